"""A bucket prefix (or any fsspec folder) listed as a stream of objects, a page of keys
at a time: a prefix of ten million keys never sits in memory. S3 is listed with
ListObjectsV2 pages (1,000 keys each, no delimiter: the whole tree below the prefix in
key order); other stores folder by folder with fsspec's ``walk`` (one folder's entries
at a time). Each object comes with its size and stamp (ETag...), so nothing is
downloaded to know what it is.
"""

from __future__ import annotations

import itertools
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import InputNotFoundError, OcrbatchError
from .storage import StorageOptions, edge_error, filesystem, join_url, scheme, stamp_of

__all__ = ["ObjectEntry", "check_source", "iter_objects"]

_PAGE = 1000  # S3's own maximum per ListObjectsV2 call


@dataclass(frozen=True, slots=True)
class ObjectEntry:
    """One object found under a URL: ``rel`` is its path below the URL listed (its
    name alone when the URL named the object itself)."""

    url: str
    rel: str
    size: int
    stamp: str


def _hidden(rel: str) -> bool:
    return any(part.startswith(".") for part in rel.split("/"))


def check_source(url: str, options: StorageOptions | None = None) -> None:
    """Fail before a job exists when ``url`` cannot be read (one line naming the bucket)
    or names nothing."""
    try:
        found = next(iter_objects(url, options, limit=1), None)
    except OcrbatchError:
        raise
    except Exception as exc:
        raise edge_error(exc, url, "read") from None
    if found is None:
        raise InputNotFoundError(f"no objects under {url}")


def iter_objects(
    url: str,
    options: StorageOptions | None = None,
    *,
    want: Callable[[str], bool] = lambda _name: True,
    skip: Callable[[str], bool] = lambda _url: False,
    limit: int | None = None,
) -> Iterator[ObjectEntry]:
    """The objects at or below ``url`` whose name passes ``want`` and whose URL does not
    pass ``skip`` (ocrbatch's own outputs), hidden ones (a path part starting with a dot)
    left out; raises the storage library's errors (see :func:`.storage.edge_error`)."""
    fs = filesystem(url, options)
    protocol = scheme(url) or "file"
    path = fs._strip_protocol(url)
    if not url.endswith("/"):
        try:
            info = fs.info(url)
        except FileNotFoundError:
            return
        if info.get("type") != "directory":
            yield ObjectEntry(
                url, posixpath.basename(path), int(info.get("size") or 0), stamp_of(info)
            )
            return
    pages = _s3_pages(fs, path) if protocol in ("s3", "s3a") else _walk_pages(fs, path)
    n = 0
    for page in pages:
        for rel, info in page:
            if rel.endswith("/") or _hidden(rel) or not want(posixpath.basename(rel)):
                continue
            full = join_url(url, rel)
            if skip(full):
                continue
            yield ObjectEntry(full, rel, int(info.get("size") or 0), stamp_of(info))
            n += 1
            if limit is not None and n >= limit:
                return


def _s3_pages(fs: Any, path: str) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    bucket, _, key = path.partition("/")
    prefix = key.rstrip("/") + "/" if key.strip("/") else ""
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": _PAGE}
        if token:
            kwargs["ContinuationToken"] = token
        resp = fs.call_s3("list_objects_v2", **kwargs)
        yield [
            (
                o["Key"][len(prefix) :],
                {
                    "size": o.get("Size"),
                    "ETag": o.get("ETag"),
                    "LastModified": o.get("LastModified"),
                },
            )
            for o in resp.get("Contents", ())
        ]
        token = resp.get("NextContinuationToken")
        if not resp.get("IsTruncated") or not token:
            return


def _walk_pages(fs: Any, path: str) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    root = path.rstrip("/")
    walk = fs.walk(root, detail=True, on_error="raise")
    try:
        first = next(walk)
    except (FileNotFoundError, StopIteration):
        return  # no such folder: nothing under it
    for folder, dirs, files in itertools.chain([first], walk):
        for name in [d for d in dirs if d.startswith(".")]:
            del dirs[name]  # pruned: walk does not go into hidden folders
        below = posixpath.relpath(folder.rstrip("/"), root) if folder.rstrip("/") != root else ""
        yield [
            (posixpath.join(below, name) if below else name, dict(info))
            for name, info in sorted(files.items())
        ]
