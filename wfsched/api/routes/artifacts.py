"""A job's result files, to their owner only."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response, StreamingResponse
from stream_zip import NO_COMPRESSION_64, stream_zip

from wfsched.api.routes.deps import ServiceDep
from wfsched.api.tenancy import UserId

router = APIRouter(prefix="/workflows/{workflow_id}/jobs/{job_id}/artifacts", tags=["jobs"])

CONTENT_TYPES = {
    ".geojson": "application/geo+json",
    ".json": "application/json",
    ".png": "image/png",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}


@router.get("/{name}", response_class=FileResponse, responses={200: {"content": {"application/octet-stream": {}}}})
async def get_artifact(workflow_id: str, job_id: str, name: str, user: UserId, service: ServiceDep) -> Response:
    """A file the job wrote (`result.artifacts` lists them); a folder (a zarr) comes as a zip."""
    path = await service.artifact_path(user, workflow_id, job_id, name)
    if path.is_dir():
        # Streamed as it is read: no temporary copy of the folder, the first bytes leave at once.
        return StreamingResponse(
            zip_stream(path), media_type="application/zip", headers={"Content-Disposition": _attachment(f"{name}.zip")}
        )
    media_type = CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type, filename=name)


def _attachment(filename: str) -> str:
    """Content-Disposition for a download, RFC 6266 (as FileResponse writes it)."""
    quoted = quote(filename)
    return f'attachment; filename="{filename}"' if quoted == filename else f"attachment; filename*=utf-8''{quoted}"


def zip_stream(folder: Path) -> Iterator[bytes]:
    """The folder as a zip under its own name, made while it is sent.

    Stored, not deflated: zarr chunks are compressed already. Each member is read whole before its
    bytes go out (the zip header needs its size and CRC); a zarr chunk is at most a few MiB.
    """

    def members() -> Iterator[tuple[str, datetime, int, Any, Iterator[bytes]]]:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                stat = file.stat()
                name = str(Path(folder.name) / file.relative_to(folder))
                yield name, datetime.fromtimestamp(stat.st_mtime), stat.st_mode, NO_COMPRESSION_64, _blocks(file)

    return iter(stream_zip(members()))


def _blocks(file: Path) -> Iterator[bytes]:
    with file.open("rb") as handle:
        while block := handle.read(1 << 20):
            yield block
