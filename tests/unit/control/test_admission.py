from __future__ import annotations

from wfsched.control.admission import AdmissionState


def positions(admission: AdmissionState) -> dict[str, int]:
    """Queued workflow → its place in line: its user's place."""
    return {workflow_id: place for user, place in admission.places().items() for workflow_id in admission.queued(user)}


def test_at_most_n_users_are_active_and_others_wait_fifo() -> None:
    admission = AdmissionState(max_active_users=3)
    assert [admission.submit(f"w{u}", f"u{u}") for u in range(5)] == [True, True, True, False, False]
    assert positions(admission) == {"w3": 1, "w4": 2}
    assert admission.finish("u1") == ["w3"]
    assert positions(admission) == {"w4": 1}
    assert admission.active_users == {"u0", "u2", "u3"}


def test_a_workflow_of_an_active_user_is_admitted_at_once() -> None:
    admission = AdmissionState(max_active_users=1)
    assert admission.submit("w1", "alice")
    assert not admission.submit("w2", "bob")
    assert admission.submit("w3", "alice")
    assert admission.finish("alice") == []  # alice still has w3
    assert admission.finish("alice") == ["w2"]


def test_a_waiting_user_is_admitted_with_all_their_workflows_and_shares_a_place() -> None:
    admission = AdmissionState(max_active_users=1)
    admission.submit("w1", "alice")
    admission.submit("w2", "bob")
    admission.submit("w3", "carol")
    admission.submit("w4", "bob")
    assert positions(admission) == {"w2": 1, "w3": 2, "w4": 1}
    assert admission.finish("alice") == ["w2", "w4"]
    assert positions(admission) == {"w3": 1}


def test_withdrawing_a_queued_workflow_moves_the_line() -> None:
    admission = AdmissionState(max_active_users=1)
    admission.submit("w1", "a")
    admission.submit("w2", "b")
    admission.submit("w3", "c")
    assert admission.withdraw("w2")
    assert not admission.withdraw("w2")
    assert positions(admission) == {"w3": 1}


def test_a_place_in_line_only_counts_down_when_a_users_first_workflow_is_withdrawn() -> None:
    """The second of two queued workflows showed place 1, then place 2 once the first was cancelled."""
    admission = AdmissionState(max_active_users=1)
    admission.submit("w0", "active")
    admission.submit("a1", "alice")
    admission.submit("b1", "bob")
    admission.submit("a2", "alice")
    assert positions(admission) == {"a1": 1, "b1": 2, "a2": 1}
    assert admission.withdraw("a1")
    assert positions(admission) == {"b1": 2, "a2": 1}
    assert admission.finish("active") == ["a2"]
    assert positions(admission) == {"b1": 1}


def test_queued_workflows_per_user_are_counted() -> None:
    admission = AdmissionState(max_active_users=1)
    admission.submit("w0", "active")
    admission.submit("a1", "alice")
    admission.submit("a2", "alice")
    assert admission.queued_of("alice") == 2 and admission.queued_of("bob") == 0
    admission.withdraw("a1")
    assert admission.queued_of("alice") == 1
