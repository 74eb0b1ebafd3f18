"""The object-storage layer without a server: URLs, identities, the error boundary, the
retries, listings, the workers' object cache and discovery of objects (fsspec's
in-memory filesystem stands in for a bucket; tests/integration/test_object_storage.py
runs the real S3 client against a real S3 API)."""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

from ocrbatch.discovery import DiscoveryOptions, discover
from ocrbatch.errors import ConfigError, DocumentError, ObjectStorageError, OutputError
from ocrbatch.inputs import iter_paths
from ocrbatch.tools import objectcache, storage
from ocrbatch.tools.listing import check_source, iter_objects
from ocrbatch.tools.objectcache import ObjectCache
from ocrbatch.tools.storage import (
    bucket_of,
    edge_error,
    identity,
    is_url,
    join_url,
    local_path,
    stamp_of,
    storage_error,
    with_retries,
)
from tests.badfiles import good_png, text_pdf


@pytest.fixture
def bucket() -> Iterator[str]:
    """A fresh "bucket" in fsspec's in-memory filesystem."""
    name = f"b{uuid.uuid4().hex[:8]}"
    yield f"memory://{name}"
    fs = fsspec.filesystem("memory")
    if fs.exists(f"/{name}"):
        fs.rm(f"/{name}", recursive=True)


def _put(url: str, data: bytes) -> None:
    fsspec.filesystem("memory").pipe_file(url, data)


def test_urls_and_local_paths() -> None:
    assert is_url("s3://scans/2026/") and is_url("gs://b/k") and is_url("https://h/x.pdf")
    assert not is_url("scans/2026") and not is_url("/srv/inbox") and not is_url("file:///tmp")
    assert local_path("file:///srv/in%20box/a.png") == "/srv/in box/a.png"
    assert local_path("s3://b/k") == "s3://b/k" and local_path("a/b") == "a/b"
    assert bucket_of("s3://scans/2026/a.pdf") == "scans"
    assert join_url("s3://ocr/2026/", "text/a b.txt") == "s3://ocr/2026/text/a b.txt"


def test_identity_comes_from_the_etag_and_size_wherever_the_object_lies() -> None:
    a = stamp_of({"ETag": '"9a0364b9e99bb480dd25e1f0284c8555"', "size": 10})
    assert a == "etag:9a0364b9e99bb480dd25e1f0284c8555:10"
    # Same content (same ETag and size) under two keys: one identity, reused.
    assert identity("s3://x/a.png", a) == identity("s3://y/b.png", a)
    assert identity("s3://x/a.png", a) != identity("s3://x/a.png", a.replace(":10", ":11"))
    # Without an ETag, a version or a time only says something at its own URL.
    t = stamp_of({"LastModified": "2026-01-01", "size": 10})
    assert t.startswith("mtime:") and identity("s3://x/a", t) != identity("s3://y/a", t)
    assert stamp_of({"generation": "17", "size": 3}) == "version:17:3"
    assert len(identity("s3://x/a", a)) == 64  # the store's content_hash column


def _client_error(code: str, status: int = 400) -> Exception:
    from botocore.exceptions import ClientError

    body = {"Error": {"Code": code, "Message": f"{code} message"}}
    return ClientError({**body, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")


@pytest.mark.parametrize(
    ("exc", "retryable", "words"),
    [
        (lambda: _client_error("SlowDown", 503), True, "storage error"),
        (lambda: _client_error("InternalError", 500), True, "storage error"),
        (lambda: OSError(errno.EBUSY, "Please reduce your request rate."), True, "reduce"),
        (lambda: TimeoutError("read timeout"), True, "storage error"),
        (lambda: _client_error("AccessDenied", 403), False, "access denied"),
        (lambda: PermissionError("The AWS Access Key Id you provided"), False, "access denied"),
        (lambda: FileNotFoundError("x"), False, "object not found"),
        (lambda: _client_error("NoSuchKey", 404), False, "object not found"),
    ],
)
def test_storage_errors_become_one_line_document_errors(
    exc: Any, retryable: bool, words: str
) -> None:
    err = storage_error(exc(), "s3://scans/a.png")
    assert isinstance(err, DocumentError) and err.retryable is retryable
    assert words in err.message and "\n" not in err.message
    assert isinstance(err, ObjectStorageError) is retryable


def test_no_credentials_and_connection_errors() -> None:
    import aiohttp
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError

    err = storage_error(NoCredentialsError(), "s3://scans/a.png")
    assert not err.retryable and "no credentials for bucket scans" in err.message
    assert storage_error(EndpointConnectionError(endpoint_url="http://x"), "s3://b/k").retryable
    assert storage_error(aiohttp.ClientConnectionError("reset"), "s3://b/k").retryable


def test_edge_errors_name_the_bucket_and_say_what_to_check() -> None:
    err = edge_error(PermissionError("InvalidAccessKeyId"), "s3://scans/2026/", "read")
    assert isinstance(err, ConfigError)
    assert err.message == (
        "cannot read s3://scans/2026/: access denied: InvalidAccessKeyId "
        "(check the credentials for bucket scans)"
    )
    out = edge_error(PermissionError("denied"), "s3://ocr/x", "write to", output=True)
    assert isinstance(out, OutputError) and "bucket ocr" in out.message


def test_a_missing_backend_or_scheme_is_one_config_line() -> None:
    pytest.importorskip("s3fs")
    if importable("gcsfs"):
        pytest.skip("gcsfs is installed here")
    with pytest.raises(ConfigError, match=r"pip install 'ocrbatch\[gcs\]'"):
        storage.filesystem("gs://bucket/x")
    with pytest.raises(ConfigError, match="unknown storage URL scheme nope://"):
        storage.filesystem("nope://bucket/x")


def importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_with_retries_retries_what_may_pass_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(storage, "_BACKOFF", 0.0)
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _client_error("SlowDown", 503)
        return "ok"

    assert with_retries(flaky, "s3://b/k") == "ok" and len(calls) == 3
    calls.clear()

    def denied() -> str:
        calls.append(1)
        raise PermissionError("no")

    with pytest.raises(DocumentError, match="access denied"):
        with_retries(denied, "s3://b/k")
    assert len(calls) == 1
    calls.clear()

    def always_busy() -> str:
        calls.append(1)
        raise _client_error("SlowDown", 503)

    with pytest.raises(ObjectStorageError):
        with_retries(always_busy, "s3://b/k")
    assert len(calls) == storage.ATTEMPTS


def test_a_prefix_is_listed_with_its_tree_without_hidden_or_unwanted_files(bucket: str) -> None:
    for key in ("in/a.png", "in/sub/b.pdf", "in/.hidden/c.png", "in/.d.png", "in/notes.txt"):
        _put(f"{bucket}/{key}", b"x" * 7)
    found = list(iter_objects(f"{bucket}/in/", want=lambda n: not n.endswith(".txt")))
    assert [(o.rel, o.size) for o in found] == [("a.png", 7), ("sub/b.pdf", 7)]
    assert found[0].url == f"{bucket}/in/a.png" and found[0].stamp.endswith(":7")
    one = list(iter_objects(f"{bucket}/in/sub/b.pdf"))
    assert [(o.url, o.rel) for o in one] == [(f"{bucket}/in/sub/b.pdf", "b.pdf")]
    skip = list(iter_objects(f"{bucket}/in", skip=lambda u: "/sub/" in u))
    assert [o.rel for o in skip] == ["a.png", "notes.txt"]
    check_source(f"{bucket}/in/")
    with pytest.raises(ConfigError, match="no objects under"):
        check_source(f"{bucket}/empty/")


def test_inputs_name_objects_below_their_prefix_and_leave_out_own_outputs(bucket: str) -> None:
    for key in ("in/a.png", "in/x/b.tif", "in/ocr/results.pdf"):
        _put(f"{bucket}/{key}", b"x")
    own = ((f"{bucket}/in/ocr", "the output folder"),)
    got = [(c.path, c.rel_path) for c in iter_paths([f"{bucket}/in/"], own)]
    assert got == [(f"{bucket}/in/a.png", "a.png"), (f"{bucket}/in/x/b.tif", "x/b.tif")]
    # Several inputs: each path starts with its input as written, less the scheme.
    two = [c.rel_path for c in iter_paths([f"{bucket}/in/x/", f"{bucket}/in/a.png"])]
    assert two == [f"{bucket[9:]}/in/x/b.tif", f"{bucket[9:]}/in/a.png"]


def test_discovery_counts_pages_by_ranges_and_downloads_nothing_to_hash(
    bucket: str, tmp_path: Path
) -> None:
    pdf = text_pdf(tmp_path / "t.pdf", ["one", "two", "three"])
    png = good_png(tmp_path / "p.png")
    _put(f"{bucket}/in/t.pdf", pdf.read_bytes())
    _put(f"{bucket}/in/p.png", png.read_bytes())
    docs = {d.rel_path: d for batch in discover([f"{bucket}/in/"]) for d in batch}
    assert docs["t.pdf"].page_count == 3 and docs["t.pdf"].error is None
    assert docs["p.png"].page_count == 1 and docs["p.png"].weight == 8.0 * png.stat().st_size
    assert docs["p.png"].content_hash == identity(f"{bucket}/in/p.png", docs["p.png"].stamp or "")
    assert docs["p.png"].size == png.stat().st_size
    opts = DiscoveryOptions(pages="5")
    late = next(iter(discover([f"{bucket}/in/t.pdf"], options=opts)))[0]
    assert late.error and "no page selected" in late.error


def test_the_object_cache_fetches_once_and_refuses_changed_objects(
    bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{bucket}/in/a.png"
    _put(url, b"first version")
    fetched: list[str] = []
    real = objectcache.download

    def counting(u: str, dest: str, options: Any = None, **kw: Any) -> None:
        fetched.append(u)
        real(u, dest, options, **kw)

    monkeypatch.setattr(objectcache, "download", counting)
    cache = ObjectCache(tmp_path / "objects", 1 << 20)
    key = identity(url, stamp_of(fsspec.filesystem("memory").info(url)))
    path = cache.local(url, key)
    assert Path(path).read_bytes() == b"first version" and Path(path).name == "a.png"
    assert cache.local(url, key) == path and fetched == [url]  # a hit: no second fetch
    _put(url, b"the second version")  # changed since discovery
    other = ObjectCache(tmp_path / "objects2", 1 << 20)
    with pytest.raises(DocumentError, match="changed since discovery"):
        other.local(url, key)


def test_the_object_cache_keeps_to_its_cap_least_recently_used_first(
    bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(objectcache, "_IN_USE_SECONDS", 0.0)
    cache = ObjectCache(tmp_path / "objects", 250)
    paths = []
    for i in range(4):
        url = f"{bucket}/k{i}.png"
        _put(url, bytes([i]) * 100)
        paths.append(cache.local(url, None))
        os.utime(paths[-1], (1000 + i, 1000 + i))  # used in this order
    left = [os.path.exists(p) for p in paths]
    assert left == [False, False, True, True] and cache.size() <= 250
