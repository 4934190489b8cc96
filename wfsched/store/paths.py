"""Every file path built from a name a user controls: the data-root check and the results layout.

Names (user ids, workflow ids, job ids) become path components only through `job_output_dir`,
which checks each against its pattern and the joined path against the results root before anyone
writes, reads or deletes there. A name that starts with a dot can never be `.` or `..` (or a
hidden folder), and the alphabet has no separator, so a checked name is always one component.
"""

from __future__ import annotations

import functools
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from wfsched.exceptions import InvalidRequestError, InvalidWorkflowError

# Ids appear in URLs and folder names. The first character is never a dot; see the module's doc.
ID_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$"
# User ids may also hold `@` (e-mail-like names from an identity provider).
USER_ID_PATTERN = r"^[A-Za-z0-9_@-][A-Za-z0-9._@-]{0,127}$"
ID_RULE = "1 to 128 characters of A-Z a-z 0-9 . _ -, not starting with a dot"
USER_ID_RULE = "1 to 128 characters of A-Z a-z 0-9 . _ @ -, not starting with a dot"

_ID = re.compile(ID_PATTERN)
_USER_ID = re.compile(USER_ID_PATTERN)


def is_user_id(candidate: str) -> bool:
    return _USER_ID.fullmatch(candidate) is not None


def is_id(candidate: str) -> bool:
    return _ID.fullmatch(candidate) is not None


def job_output_dir(results_dir: Path, user_id: str, workflow_id: str, job_id: str) -> Path:
    """Where a job's artifacts live: `<results>/<user>/<workflow>/<job>/`, checked to lie inside.

    Raises InvalidRequestError for a name that could leave its place; callers validated the names
    long before, so reaching that is a bug elsewhere, and refusing is the safe answer.
    """
    return _inside(results_dir, user_id, workflow_id, job_id)


def workflow_output_dir(results_dir: Path, user_id: str, workflow_id: str) -> Path:
    """`<results>/<user>/<workflow>/`, the folder of every job of a workflow, checked as above."""
    return _inside(results_dir, user_id, workflow_id)


def job_output_dirs(results_dir: Path, user_id: str, workflow_id: str, job_ids: Iterable[str]) -> list[Path]:
    """`job_output_dir` of each of `job_ids`, jobs of one workflow, for a lane host starting one.

    Each job's folder is checked every time; the user's and the workflow's folders above them once
    per process: a lane host starts each of a workflow's jobs, and only wfsched's processes create
    folders under the results root.
    """
    workflow = _known_workflow_dir(Path(results_dir), user_id, workflow_id)
    return [_below(workflow, _checked_id(job_id)) for job_id in job_ids]


@functools.lru_cache(maxsize=4096)
def _known_workflow_dir(results_dir: Path, user_id: str, workflow_id: str) -> Path:
    return _inside(results_dir, user_id, workflow_id)


def _inside(results_dir: Path, user_id: str, *ids: str) -> Path:
    if not is_user_id(user_id):
        raise InvalidRequestError(f"user id {user_id!r} cannot name a folder: {USER_ID_RULE}")
    results_dir = Path(results_dir)
    folder = _real_root(results_dir) if results_dir.is_absolute() else results_dir.resolve()
    for name in (user_id, *map(_checked_id, ids)):
        folder = _below(folder, name)
    return folder


def _checked_id(name: str) -> str:
    if not is_id(name):
        raise InvalidRequestError(f"id {name!r} cannot name a folder: {ID_RULE}")
    return name


def _below(folder: Path, name: str) -> Path:
    """`folder/name` for a checked name, in a folder that is real: refused if it is a symbolic link.

    Each checked name is one component and the root is real, so only a symlink among the folders
    below it could lead elsewhere (even to another tenant's folder). A lane host builds these paths
    for every job it starts; this costs a stat per folder, where resolving the whole path cost one
    per component from `/` on.
    """
    path = folder / name
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return path  # what is missing, `mkdir` makes as real folders
    if stat.S_ISLNK(mode):
        raise InvalidRequestError(f"{path} is a symbolic link: the results folder could lie outside the results root")
    return path


@functools.lru_cache(maxsize=16)
def _real_root(results_dir: Path) -> Path:
    """The results root with its symlinks resolved (once per process for an absolute one)."""
    return results_dir.resolve()


def file_in(folder: Path, name: str) -> Path | None:
    """`folder/name` if it exists and lies inside `folder` (symlinks resolved), else None."""
    if "\x00" in name or "/" in name or name in ("", ".", ".."):
        return None
    path = (folder / name).resolve()
    return path if path.is_relative_to(folder.resolve()) and path.exists() else None


def resolve_in_data_roots(image_path: str | Path, data_roots: Iterable[Path]) -> Path:
    """The real path of `image_path` (symlinks resolved) if it lies inside a data root, else refuse.

    Raises InvalidWorkflowError (422 at submission); existence is not checked here, reading is.
    """
    text = str(image_path)
    if "\x00" in text:
        raise InvalidWorkflowError(f"image_path {text!r} contains a NUL character")
    raw = Path(image_path).expanduser()
    if not raw.is_absolute():
        raise InvalidWorkflowError(f"image_path {text!r} must be an absolute path")
    try:
        real = raw.resolve()
    except (OSError, RuntimeError) as error:  # a symlink loop, a name too long for the file system
        raise InvalidWorkflowError(f"image_path {text!r} cannot be resolved: {error}") from error
    roots = [Path(root).expanduser().resolve() for root in data_roots]
    if any(real == root or real.is_relative_to(root) for root in roots):
        return real
    listed = ", ".join(str(root) for root in roots) or "(none configured)"
    raise InvalidWorkflowError(f"image_path {text!r} is outside the data roots: {listed}")
