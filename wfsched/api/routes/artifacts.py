"""A job's result files, to their owner only."""

from __future__ import annotations

import mimetypes
import tempfile
import zipfile
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

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
async def get_artifact(workflow_id: str, job_id: str, name: str, user: UserId, service: ServiceDep) -> FileResponse:
    """A file the job wrote (`result.artifacts` lists them); a folder (a zarr) comes as a zip."""
    path = await service.artifact_path(user, workflow_id, job_id, name)
    if path.is_dir():
        archive = _zip_folder(path)
        return FileResponse(
            archive, media_type="application/zip", filename=f"{name}.zip", background=BackgroundTask(archive.unlink)
        )
    media_type = CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type, filename=name)


def _zip_folder(folder: Path) -> Path:
    """The folder as a zip in a temporary file; stored, not deflated: zarr chunks are compressed."""
    handle, name = tempfile.mkstemp(suffix=".zip")
    with open(handle, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, Path(folder.name) / file.relative_to(folder))
    return Path(name)
