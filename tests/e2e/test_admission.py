"""Five users against a limit of three: never more active, FIFO admission, positions count down."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.service import Api


def waiting_job(data_dir: Path, signal: Path) -> list[dict[str, Any]]:
    return [
        {
            "job_id": "hold",
            "job_type": "wait_signal",
            "image_path": str(data_dir / "a.svs"),
            "params": {"signal_path": str(signal)},
        }
    ]


def max_concurrent_users(intervals: dict[str, list[tuple[float, float]]]) -> int:
    """The most users whose admitted workflows overlap at any instant."""
    points = []
    for spans in intervals.values():
        start, end = min(s for s, _ in spans), max(e for _, e in spans)
        points += [(start, 1), (end, -1)]
    active = peak = 0
    for _, delta in sorted(points, key=lambda p: (p[0], p[1])):
        active += delta
        peak = max(peak, active)
    return peak


def test_five_users_against_a_limit_of_three(make_user: Callable[[str], Api], data_dir: Path) -> None:
    users = [make_user(f"user{i}") for i in range(1, 6)]
    signals = {u.user: data_dir / f"release-{u.user}" for u in users}
    submitted = {u.user: [u.submit(waiting_job(data_dir, signals[u.user]))] for u in users}
    assert [submitted[u.user][0]["status"] for u in users] == ["running"] * 3 + ["queued"] * 2
    assert [submitted[u.user][0]["queue_position"] for u in users[3:]] == [1, 2]

    # An active user's next workflow is admitted at once, ahead of the queue.
    extra = users[0].submit(waiting_job(data_dir, signals[users[0].user]))
    assert extra["status"] == "running"
    submitted[users[0].user].append(extra)

    def status(user: Api) -> tuple[str, int | None]:
        wf = user.workflow(submitted[user.user][0]["workflow_id"])
        return wf["status"], wf["queue_position"]

    assert status(users[4]) == ("queued", 2)
    signals[users[0].user].write_text("go")  # user1 finishes both workflows: one slot frees
    users[3].wait(submitted[users[3].user][0]["workflow_id"], lambda wf: wf["status"] == "running")
    assert status(users[4]) == ("queued", 1)  # counts down
    signals[users[1].user].write_text("go")
    users[4].wait(submitted[users[4].user][0]["workflow_id"], lambda wf: wf["status"] == "running")
    for user in users[2:]:
        signals[user.user].write_text("go")

    intervals: dict[str, list[tuple[float, float]]] = {}
    for user in users:
        for created in submitted[user.user]:
            wf = user.wait(created["workflow_id"])
            assert wf["status"] == "succeeded"
            intervals.setdefault(user.user, []).append((wf["admitted_at"], wf["finished_at"]))
    assert max_concurrent_users(intervals) == 3
    admitted_order = sorted(users, key=lambda u: min(s for s, _ in intervals[u.user]))
    assert [u.user for u in admitted_order] == [u.user for u in users]  # FIFO
    # user4 was admitted only once user1 had finished, user5 once user2 had.
    assert min(s for s, _ in intervals[users[3].user]) >= max(e for _, e in intervals[users[0].user])
    assert min(s for s, _ in intervals[users[4].user]) >= max(e for _, e in intervals[users[1].user])


def test_queued_workflow_can_be_cancelled_and_leaves_the_line(make_user: Callable[[str], Api], data_dir: Path) -> None:
    users = [make_user(f"line{i}") for i in range(5)]
    signal = data_dir / f"line-release-{users[0].user}"
    created = [u.submit(waiting_job(data_dir, signal)) for u in users]
    assert [c["queue_position"] for c in created] == [None, None, None, 1, 2]
    cancelled = users[3].request("POST", f"/api/workflows/{created[3]['workflow_id']}/cancel").json()
    assert cancelled["status"] == "cancelled"
    assert users[4].workflow(created[4]["workflow_id"])["queue_position"] == 1
    signal.write_text("go")
    for user, c in zip(users, created, strict=True):
        user.wait(c["workflow_id"])
