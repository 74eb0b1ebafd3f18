"""Request size limits, enforced while the body streams in (an ASGI middleware): a
body over the limit is refused with 413 as soon as its Content-Length says so, or as
soon as that many bytes arrived, before the route parses it."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit"]


class _TooLarge(HTTPException):
    """Raised from inside the body stream: the app's handler answers 413 (an
    HTTPException passes the body parsers unchanged)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over the limit of {limit:,} bytes")


class BodyLimit:
    """``max_body`` bytes for every request, ``max_upload`` for paths under ``upload_prefix``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int,
        max_upload: int,
        upload_prefix: str,
        json_paths: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.json_paths = json_paths
        self.max_body = max_body
        self.max_upload = max_upload
        self.upload_prefix = upload_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if scope.get("method") == "POST" and path in self.json_paths:
            scope = _as_json(scope)
        limit = self.max_upload if path.startswith(self.upload_prefix) else self.max_body
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _refuse(send, limit)
            return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return msg

        async def tracking(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited, tracking)
        except _TooLarge:
            if not started:
                await _refuse(send, limit)


def _as_json(scope: Scope) -> Scope:
    """A JSON route's body is JSON whatever its Content-Type says (``curl -d`` sends
    form-urlencoded, or none)."""
    headers = [(k, v) for k, v in scope.get("headers") or [] if k != b"content-type"]
    old = dict(scope.get("headers") or []).get(b"content-type", b"")
    if old.startswith(b"application/json"):
        return scope
    return {**scope, "headers": [*headers, (b"content-type", b"application/json")]}


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"error": f"request body over the limit of {limit:,} bytes"}).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
