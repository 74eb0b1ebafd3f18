"""Uploads: a small batch of files in one multipart request, put in a new folder of
the service's inbox; the folder is then an input like any other. The request's size
is capped (see limits.py) and file names are reduced to safe base names."""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, File, UploadFile
from fastapi.responses import JSONResponse

from ..inputs import SUPPORTED_EXTENSIONS
from ..store import TokenInfo
from .auth import write_scope
from .context import ServiceContext, context
from .errors import ApiError
from .schemas import UploadOut

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["uploads"])
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
_CHUNK = 1 << 20


def safe_name(name: str, taken: set[str]) -> str:
    """A file name that stays in its folder: base name only, no hidden files, plain
    characters, unique among ``taken``."""
    base = _UNSAFE.sub("_", os.path.basename(name.replace("\\", "/"))).strip(" .")[:150]
    base = base or "file"
    stem, ext = os.path.splitext(base)
    out, n = base, 1
    while out in taken:
        n += 1
        out = f"{stem}-{n}{ext}"
    taken.add(out)
    return out


@router.post("/uploads", status_code=201, response_model=UploadOut, summary="Upload files")
async def upload(
    files: Annotated[list[UploadFile], File(description="Images, TIFFs or PDFs.")],
    ctx: Annotated[ServiceContext, Depends(context)],
    _: Annotated[TokenInfo, Depends(write_scope)],
) -> JSONResponse:
    """Put the files in a new inbox folder and return it, to use as a job's input."""
    if not files:
        raise ApiError(422, "files: give at least one file")
    if len(files) > ctx.settings.max_upload_files:
        raise ApiError(413, f"at most {ctx.settings.max_upload_files} files per upload")
    for f in files:
        ext = os.path.splitext(f.filename or "")[1].lower()
        if ext not in SUPPORTED_EXTENSIONS:
            raise ApiError(
                422,
                f"file {f.filename!r}: not an image or PDF by its name ({ext or 'no extension'})",
            )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    folder = ctx.settings.inbox / f"{stamp}-{secrets.token_hex(4)}"
    folder.mkdir(parents=True)
    taken: set[str] = set()
    names, total = [], 0
    for f in files:
        name = safe_name(f.filename or "file", taken)
        with open(folder / name, "xb") as out:
            while chunk := await f.read(_CHUNK):
                total += len(chunk)
                out.write(chunk)
        names.append(name)
    return JSONResponse({"path": str(folder), "files": names, "bytes": total}, status_code=201)
