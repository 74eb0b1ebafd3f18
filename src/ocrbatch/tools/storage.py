"""Object storage through fsspec: URLs (``s3://``, ``gs://``, ``az://``, ``http(s)://``
read-only; ``file://`` and plain paths stay local files), their filesystems built from the
job's ``--storage-option`` values on top of each library's own credential chain
(environment, profile, instance role), an object's identity from its listing (ETag or
version, and size: nothing is downloaded to know it), downloads and uploads with retries.

This module is also the one boundary where the storage libraries' exceptions (botocore's,
aiohttp's, and the OSErrors fsspec and s3fs make of S3's error codes) become ocrbatch
errors: :func:`storage_error` for a document (retryable when throttled, a 5xx or the
connection; not when not found or denied), :func:`edge_error` for an input or output
named on the command line (one line naming the bucket). Listing lives in
:mod:`.listing`, the workers' local copies in :mod:`.objectcache`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from typing import IO, Any, TypeVar
from urllib.parse import unquote, urlsplit

from ..errors import (
    ConfigError,
    DocumentError,
    ObjectStorageError,
    OcrbatchError,
    OutputError,
    Translation,
    one_line,
    translate,
)

__all__ = [
    "CHANGED",
    "EXTRAS",
    "StorageOptions",
    "bucket_of",
    "check_writable",
    "conditional",
    "download",
    "edge_error",
    "etag_of",
    "filesystem",
    "identity",
    "is_url",
    "join_url",
    "local_path",
    "object_info",
    "open_ranged",
    "remove",
    "stamp_of",
    "storage_error",
    "upload",
    "with_retries",
]

StorageOptions = Mapping[str, Any]
T = TypeVar("T")

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# URL scheme -> the ocrbatch extra that installs its fsspec package.
EXTRAS = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
    "http": "http",
    "https": "http",
}
_LOCAL = frozenset({"file", "local"})
# botocore's own retries: "standard" mode backs off exponentially with jitter on
# throttling (SlowDown, 503) and 5xx; 10 attempts ride out a burst of SlowDown that the
# default 5 (legacy mode) do not. s3fs retries SlowDown on top of that.
_S3_DEFAULTS: dict[str, Any] = {
    "config_kwargs": {"retries": {"max_attempts": 10, "mode": "standard"}}
}
CHANGED = (
    "the object changed since discovery (its ETag or size differs): a new job (or "
    "`ocrbatch watch`) takes the new version"
)
# Our own attempts around a whole download or upload, after the library's retries.
ATTEMPTS = 4
_BACKOFF = 0.5


def scheme(text: str) -> str | None:
    m = _SCHEME.match(text)
    return m.group(1).lower() if m else None


def is_url(text: str) -> bool:
    """True for an object-storage URL (``s3://...``); False for a local path or file://."""
    s = scheme(text)
    return s is not None and s not in _LOCAL


def local_path(text: str) -> str:
    """A ``file://`` URL as a plain path; anything else as it is."""
    if scheme(text) in _LOCAL:
        return unquote(urlsplit(text).path) or "/"
    return text


def bucket_of(url: str) -> str:
    """The bucket (container, host) a URL names: what a person checks credentials for."""
    return urlsplit(url).netloc or url


def join_url(base: str, rel: str) -> str:
    """``rel`` (a relative path, either slash) below the URL ``base``."""
    return base.rstrip("/") + "/" + rel.replace(os.sep, "/").lstrip("/")


def filesystem(url: str, options: StorageOptions | None = None) -> Any:
    """The fsspec filesystem of ``url`` with ``options`` (fsspec keeps one instance per
    protocol and options in each process). A missing backend is one ConfigError line
    naming the extra to install."""
    import fsspec

    protocol = scheme(url) or "file"
    kwargs = {**(_S3_DEFAULTS if protocol in ("s3", "s3a") else {}), **dict(options or {})}
    try:
        return fsspec.filesystem(protocol, **kwargs)
    except ImportError:
        extra = EXTRAS.get(protocol)
        hint = f": pip install 'ocrbatch[{extra}]'" if extra else ""
        raise ConfigError(f"{protocol}:// URLs need a storage package{hint}") from None
    except ValueError as exc:
        if "Protocol not known" in str(exc):
            raise ConfigError(f"unknown storage URL scheme {protocol}:// in {url}") from None
        raise ConfigError(f"--storage-option: {one_line(str(exc))}") from None
    except TypeError as exc:
        raise ConfigError(f"--storage-option not taken by {protocol}://: {exc}") from None


def object_info(url: str, options: StorageOptions | None = None) -> dict[str, Any]:
    """What the store says of the object at ``url`` (one HEAD request; fresh, not from a
    listing cache); raises the storage library's errors."""
    fs = filesystem(url, options)
    info: dict[str, Any] = fs.info(url, refresh=True) if _takes_refresh(fs) else fs.info(url)
    return info


def _takes_refresh(fs: Any) -> bool:
    return type(fs).__module__.startswith("s3fs")


def stamp_of(info: Mapping[str, Any]) -> str:
    """What changes when the object does: its ETag (or MD5, version, generation,
    modification time, in that order of preference) and its size."""
    size = info.get("size")
    for key in ("ETag", "etag", "md5Hash", "content_md5"):
        tag = info.get(key)
        if tag:
            return f"etag:{str(tag).strip(chr(34))}:{size}"
    for key in ("VersionId", "version_id", "generation"):
        version = info.get(key)
        if version:
            return f"version:{version}:{size}"
    for key in ("LastModified", "last_modified", "mtime", "updated"):
        when = info.get(key)
        if when:
            return f"mtime:{when}:{size}"
    return f"size:{size}"


def identity(url: str, stamp: str) -> str:
    """A document's content hash for reuse and resume, from its stamp alone: equal ETags
    and sizes are the same content wherever they lie (so a copy under another key is
    reused); any other stamp is the same content only at the same URL."""
    key = stamp if stamp.startswith("etag:") else f"{url}\0{stamp}"
    return hashlib.blake2b(f"object\0{key}".encode(), digest_size=32).hexdigest()


def open_ranged(url: str, options: StorageOptions | None = None) -> IO[bytes]:
    """A read-only file object on the object that fetches only the ranges read, in
    small blocks (a PDF's page tree or a TIFF's headers, not the whole object)."""
    fs = filesystem(url, options)
    f: IO[bytes] = fs.open(url, "rb", block_size=1 << 18, cache_type="blockcache")
    return f


def conditional(url: str) -> bool:
    """Does the store of ``url`` take a download conditional on the ETag (S3)?"""
    return scheme(url) in ("s3", "s3a")


def etag_of(stamp: str | None) -> str | None:
    """The ETag in a stamp made by :func:`stamp_of`, if it has one."""
    if not stamp or not stamp.startswith("etag:"):
        return None
    return stamp.removeprefix("etag:").rsplit(":", 1)[0] or None


def download(
    url: str, dest: str, options: StorageOptions | None = None, *, etag: str | None = None
) -> None:
    """Copy the object at ``url`` to the local file ``dest`` (retried; see
    :func:`with_retries`); raises a DocumentError. With ``etag`` (S3), one GET that
    succeeds only while the object still has it (If-Match), else :data:`CHANGED`."""
    fs = filesystem(url, options)
    if etag is not None and conditional(url):
        with_retries(lambda: _get_if_match(fs, url, dest, etag), url)
    else:
        with_retries(lambda: fs.get_file(url, dest), url)


def _get_if_match(fs: Any, url: str, dest: str, etag: str) -> None:
    from fsspec.asyn import sync

    bucket, key, version = fs.split_path(url)
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "IfMatch": f'"{etag}"'}
    if version:
        kwargs["VersionId"] = version

    async def fetch() -> None:  # one round trip to fsspec's I/O thread, not one per chunk
        resp = await fs._call_s3("get_object", **kwargs)
        body = resp["Body"]
        try:
            with open(dest, "wb") as f:
                while chunk := await body.read(1 << 20):
                    f.write(chunk)
        finally:
            with contextlib.suppress(Exception):
                body.close()

    try:
        sync(fs.loop, fetch)
    except Exception as exc:
        if "PreconditionFailed" in (_code(exc), _code(exc.__cause__ or exc)):
            raise DocumentError(CHANGED) from None
        raise


def upload(src: str, url: str, options: StorageOptions | None = None) -> None:
    """Put the local file ``src`` at ``url`` as one object: it becomes visible only when
    whole (a single PUT, or a multipart upload completed at its end); retried."""
    fs = filesystem(url, options)
    with_retries(lambda: fs.put_file(src, url), url)


def check_writable(url: str, options: StorageOptions | None = None) -> None:
    """Prove that objects can be put under ``url`` (a tiny probe object, removed after):
    one OutputError line naming the bucket if not."""
    if scheme(url) in ("http", "https"):
        raise ConfigError(f"--out {url}: http(s) URLs are read-only; give a bucket or a folder")
    probe = join_url(url, f".ocrbatch-write-test-{os.getpid()}")
    fs = filesystem(url, options)
    try:
        fs.pipe_file(probe, b"")
    except Exception as exc:
        raise edge_error(exc, url, "write to", output=True) from None
    with contextlib.suppress(Exception):  # a store may allow writes and not deletes
        fs.rm_file(probe)


def remove(url: str, options: StorageOptions | None = None) -> None:
    fs = filesystem(url, options)
    with_retries(lambda: fs.rm_file(url), url)


def with_retries(call: Callable[[], T], url: str, attempts: int = ATTEMPTS) -> T:
    """``call()``, tried again with exponential backoff and jitter while it fails in a
    way a retry may cure (the storage library has already retried each request); then
    its DocumentError (see :func:`storage_error`)."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:
            err = storage_error(exc, url)
            if not err.retryable or attempt == attempts:
                raise err from None
            time.sleep(_BACKOFF * 2 ** (attempt - 1) * (1 + random.random()))
    raise AssertionError("unreachable")


# -- the error boundary ---------------------------------------------------------------
_BUSY = frozenset({errno.EBUSY, getattr(errno, "EREMOTEIO", errno.EIO), errno.EIO})


def _why(exc: BaseException) -> str:
    text = str(exc.args[-1]) if isinstance(exc, OSError) and exc.args else str(exc)
    return one_line(text or type(exc).__name__, 200)


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _mapping(url: str) -> dict[type[BaseException], Translation]:
    """How each storage library's exceptions read as ours (built when needed: the
    libraries are optional)."""
    bucket = bucket_of(url)

    def denied(e: BaseException) -> OcrbatchError:
        return DocumentError(f"access denied: {_why(e)}")

    def missing(_e: BaseException) -> OcrbatchError:
        return DocumentError("object not found (deleted after discovery?)")

    def transient(e: BaseException) -> OcrbatchError:
        return ObjectStorageError(f"storage error: {_why(e)}")

    def no_credentials(e: BaseException) -> OcrbatchError:
        return DocumentError(
            f"no credentials for bucket {bucket}: {_why(e)} (set them the usual way: "
            "environment, profile or instance role; or --storage-option anon=true)"
        )

    def oserror(e: BaseException) -> OcrbatchError:
        assert isinstance(e, OSError)
        if e.errno in _BUSY or isinstance(e, TimeoutError | ConnectionError):
            return transient(e)
        if isinstance(e, IsADirectoryError | NotADirectoryError):
            return DocumentError("not an object (a folder or prefix)")
        return DocumentError(f"storage error: {_why(e)}")

    def client_error(e: BaseException) -> OcrbatchError:
        code = _code(e)
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
            return denied(e)
        if code in ("NoSuchKey", "NoSuchBucket", "404"):
            return missing(e)
        return transient(e)

    mapping: dict[type[BaseException], Translation] = {
        FileNotFoundError: missing,
        PermissionError: denied,
    }
    try:
        from botocore import exceptions as boto
    except ImportError:
        pass
    else:
        mapping[boto.NoCredentialsError] = no_credentials
        mapping[boto.PartialCredentialsError] = no_credentials
        mapping[boto.ClientError] = client_error
        mapping[boto.BotoCoreError] = transient  # endpoints, timeouts, dropped connections
    try:
        import aiohttp
    except ImportError:
        pass
    else:
        mapping[aiohttp.ClientError] = transient
    mapping[OSError] = oserror
    return mapping


def storage_error(exc: BaseException, url: str) -> DocumentError:
    """A failed storage call on ``url`` as a document's one-line error: an
    :class:`~ocrbatch.errors.ObjectStorageError` (retryable) when throttled, a 5xx or
    the connection; a plain DocumentError when not found or denied. The reason does not
    repeat the URL (errors.jsonl gives each document's path beside it)."""
    err = translate(exc, _mapping(url), default=ObjectStorageError, prefix="storage error: ")
    return err if isinstance(err, DocumentError) else DocumentError(err.message)


def edge_error(exc: BaseException, url: str, doing: str, *, output: bool = False) -> OcrbatchError:
    """A failed storage call on an input or output named on the command line: one line
    that names the bucket (a ConfigError, or an OutputError for ``--out``)."""
    if isinstance(exc, ConfigError):
        return exc
    err = storage_error(exc, url)
    why = err.message
    if isinstance(exc, FileNotFoundError) or _code(exc) in ("NoSuchBucket", "NoSuchKey", "404"):
        why = f"no such bucket or object ({_why(exc)})"
    text = f"cannot {doing} {url}: {why}"
    if err.message.startswith("access denied"):
        text += f" (check the credentials for bucket {bucket_of(url)})"
    return OutputError(text) if output else ConfigError(text)


def options_token(options: StorageOptions | None) -> str:
    """The options as a stable string (a cache key)."""
    return json.dumps(dict(options or {}), sort_keys=True, default=str)
