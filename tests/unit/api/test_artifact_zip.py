"""A folder artifact is streamed as a zip that holds every file of it, byte for byte."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from wfsched.api.routes.artifacts import zip_stream


def test_a_folder_streams_as_a_zip_of_every_file_under_its_name(tmp_path: Path) -> None:
    folder = tmp_path / "labels.zarr"
    (folder / "c" / "0").mkdir(parents=True)
    files = {
        "zarr.json": b'{"zarr_format": 3}',
        "c/0/0": bytes(range(256)) * 9000,  # over one read block (1 MiB) of the stream
        "c/0/1": b"",
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(zip_stream(folder))))
    assert archive.testzip() is None
    assert {info.filename: archive.read(info) for info in archive.infolist()} == {
        f"labels.zarr/{name}": content for name, content in files.items()
    }
    assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}
