"""A real S3 API on 127.0.0.1 for the tests and the benchmark: moto's server (the S3
backend behind its own HTTP front, as ``moto_server`` runs it), in a process of its own,
with a WSGI layer in front that does what moto does not:

- credentials: with ``--access-key KEY`` (repeatable) a request signed with any other
  access key id gets S3's own answer, 403 ``InvalidAccessKeyId`` (moto accepts anything);
- throttling on request: ``POST /_faults`` with ``{"slowdown": N, "match": "part"}`` makes
  the first N requests for each object whose path contains ``part`` fail with 503
  ``SlowDown``, as S3 does under load; ``GET /_faults`` says how many were injected.

Run as ``python -m tests.s3server [--port 0]``: it prints ``ready PORT`` once it serves.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

Start = Callable[[str, list[tuple[str, str]]], Any]

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


def _error(start: Start, status: str, code: str, message: str) -> Iterable[bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>ocrbatch-test</RequestId></Error>"
    ).encode()
    start(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]


class Faults:
    """The WSGI layer in front of moto (see the module docstring)."""

    def __init__(self, app: Any, access_keys: Iterable[str]) -> None:
        self.app = app
        self.access_keys = set(access_keys)
        self.lock = threading.Lock()
        self.slowdown = 0
        self.match = ""
        self.seen: Counter[str] = Counter()
        self.injected = 0
        self.gets = 0

    def __call__(self, environ: dict[str, Any], start: Start) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/_faults":
            return self._control(environ, start, method)
        if self.access_keys:
            m = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
            if m is None or m.group(1) not in self.access_keys:
                return _error(
                    start,
                    "403 Forbidden",
                    "InvalidAccessKeyId",
                    "The AWS Access Key Id you provided does not exist in our records.",
                )
        is_object = method in ("GET", "HEAD") and path.count("/") >= 2 and path[-1] != "/"
        with self.lock:
            if method == "GET" and is_object:
                self.gets += 1
            hit = bool(self.slowdown and is_object and self.match in path)
            if hit:
                self.seen[path] += 1
                hit = self.seen[path] <= self.slowdown
                self.injected += hit
        if hit:
            return _error(start, "503 Slow Down", "SlowDown", "Please reduce your request rate.")
        result: Iterable[bytes] = self.app(environ, start)
        return result

    def _control(self, environ: dict[str, Any], start: Start, method: str) -> Iterable[bytes]:
        if method == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            doc = json.loads(environ["wsgi.input"].read(size) or b"{}")
            with self.lock:
                self.slowdown = int(doc.get("slowdown", 0))
                self.match = str(doc.get("match", ""))
                self.seen.clear()
                self.injected = 0
                self.gets = 0
        with self.lock:
            body = json.dumps({"injected": self.injected, "object_gets": self.gets}).encode()
        start("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--access-key", action="append", default=[])
    args = parser.parse_args(argv)
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class Quiet(MotoRequestHandler):  # type: ignore[misc]
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass  # a line per request costs the benchmark's CPU

    app = Faults(DomainDispatcherApplication(create_backend_app), args.access_key)
    server = make_server("127.0.0.1", args.port, app, threaded=True, request_handler=Quiet)
    print(f"ready {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
