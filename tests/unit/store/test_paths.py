"""Names a user controls never become a path outside its root: the data roots and the results layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wfsched.exceptions import InvalidRequestError, InvalidWorkflowError
from wfsched.store.paths import file_in, is_id, is_user_id, job_output_dir, job_output_dirs, resolve_in_data_roots


def test_resolve_accepts_a_path_inside_a_root(tmp_path: Path) -> None:
    (tmp_path / "a.svs").touch()
    assert resolve_in_data_roots(tmp_path / "a.svs", [tmp_path]) == (tmp_path / "a.svs").resolve()


def test_resolve_refuses_a_symlink_that_escapes_the_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir(), outside.mkdir()
    (outside / "secret.svs").touch()
    (root / "link.svs").symlink_to(outside / "secret.svs")
    with pytest.raises(InvalidWorkflowError, match="outside the data roots"):
        resolve_in_data_roots(root / "link.svs", [root])


def test_resolve_refuses_dot_dot_and_relative_paths(tmp_path: Path) -> None:
    with pytest.raises(InvalidWorkflowError):
        resolve_in_data_roots(tmp_path / "root" / ".." / "x.svs", [tmp_path / "root"])
    with pytest.raises(InvalidWorkflowError, match="absolute"):
        resolve_in_data_roots("x.svs", [tmp_path])


def test_resolve_refuses_a_nul_byte_with_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(InvalidWorkflowError, match="NUL"):
        resolve_in_data_roots(str(tmp_path / "a.svs") + "\x00.txt", [tmp_path])


def test_resolve_refuses_a_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(InvalidWorkflowError):
        resolve_in_data_roots(tmp_path / "loop" / "a.svs", [tmp_path / "elsewhere"])


@pytest.mark.parametrize("name", [".", "..", "...", ".hidden", "a/b", "a\\b", "", "x" * 129, "a\x00", "é"])
def test_ids_that_could_leave_their_folder_are_refused(name: str) -> None:
    assert not is_id(name)
    assert not is_user_id(name)


@pytest.mark.parametrize("name", ["a", "job-1", "a.b", "A_b-9", "x" * 128, "-", "_.."])
def test_ordinary_ids_are_accepted(name: str) -> None:
    assert is_id(name) and is_user_id(name)
    assert is_user_id("lab-a@example.org") and not is_id("lab-a@example.org")


@pytest.mark.parametrize(
    ("user", "workflow", "job"),
    [("..", "w", "j"), (".", "w", ".."), ("u", "..", "j"), ("u", "w", "."), ("u", "w", "../tiles"), ("u/..", "w", "j")],
)
def test_the_reported_escapes_are_refused(tmp_path: Path, user: str, workflow: str, job: str) -> None:
    """`X-User-ID: ..` wrote outside the results; `.` with job `..` made the results root a job's folder."""
    with pytest.raises(InvalidRequestError):
        job_output_dir(tmp_path / "results", user, workflow, job)


def test_a_job_folder_is_three_levels_under_the_root(tmp_path: Path) -> None:
    root = tmp_path / "results"
    assert job_output_dir(root, "lab-a", "wf", "job-1") == root.resolve() / "lab-a" / "wf" / "job-1"


def test_a_symlinked_user_folder_that_leaves_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "results"
    root.mkdir()
    (root / "mallory").symlink_to(tmp_path)
    with pytest.raises(InvalidRequestError, match="outside"):
        job_output_dir(root, "mallory", "wf", "job")


def test_a_user_folder_symlinked_to_another_tenant_s_is_refused(tmp_path: Path) -> None:
    """It stays inside the root and three levels deep, yet it is someone else's folder."""
    root = tmp_path / "results"
    (root / "alice" / "wf" / "job").mkdir(parents=True)
    (root / "mallory").symlink_to(root / "alice")
    with pytest.raises(InvalidRequestError, match="symbolic link"):
        job_output_dir(root, "mallory", "wf", "job")
    (root / "bob" / "wf").mkdir(parents=True)
    (root / "bob" / "wf" / "job").symlink_to(root / "alice" / "wf" / "job")
    with pytest.raises(InvalidRequestError, match="symbolic link"):
        job_output_dir(root, "bob", "wf", "job")


def test_a_results_root_behind_a_symlink_is_followed(tmp_path: Path) -> None:
    (tmp_path / "disk").mkdir()
    (tmp_path / "results").symlink_to(tmp_path / "disk")
    assert job_output_dir(tmp_path / "results", "lab-a", "wf", "j") == tmp_path / "disk" / "lab-a" / "wf" / "j"


def test_the_folders_of_several_jobs_of_a_workflow_are_each_checked(tmp_path: Path) -> None:
    root = tmp_path / "results"
    (root / "alice" / "wf" / "mask").mkdir(parents=True)
    (root / "bob" / "wf").mkdir(parents=True)
    assert job_output_dirs(root, "bob", "wf", ["cells", "mask"]) == [
        job_output_dir(root, "bob", "wf", job) for job in ("cells", "mask")
    ]
    (root / "bob" / "wf" / "mask").symlink_to(root / "alice" / "wf" / "mask")
    with pytest.raises(InvalidRequestError, match="symbolic link"):
        job_output_dirs(root, "bob", "wf", ["cells", "mask"])
    with pytest.raises(InvalidRequestError, match="cannot name a folder"):
        job_output_dirs(root, "bob", "wf", ["cells", ".."])


# Any text at all, with the characters that matter for paths made likely.
_names = st.text(
    alphabet=st.sampled_from(["a", ".", "/", "\\", "-", "_", "@", "\x00", "~", " ", "é"]), max_size=12
) | st.text(max_size=12)


@settings(max_examples=2_000, deadline=None)
@given(user=_names, workflow=_names, job=_names)
def test_no_ids_make_a_path_outside_the_results_root(
    tmp_path_factory: pytest.TempPathFactory, user: str, workflow: str, job: str
) -> None:
    root = tmp_path_factory.getbasetemp() / "results"
    try:
        folder = job_output_dir(root, user, workflow, job)
    except InvalidRequestError:
        return
    assert folder.is_relative_to(root.resolve())
    assert len(folder.relative_to(root.resolve()).parts) == 3
    assert folder.parts[-3:] == (user, workflow, job)


def test_file_in_keeps_to_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "a.json").write_text("{}")
    (tmp_path / "secret").write_text("x")
    (folder / "link").symlink_to(tmp_path / "secret")
    assert file_in(folder, "a.json") == (folder / "a.json").resolve()
    for name in ("a.json\x00", "../secret", "link", "..", ".", "", "missing"):
        assert file_in(folder, name) is None
