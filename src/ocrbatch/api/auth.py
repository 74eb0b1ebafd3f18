"""Bearer tokens and their scopes. Every route but /healthz and /metrics asks for one:
401 without a token (or with an unknown or revoked one), 403 with the wrong scope. The
dashboard keeps the token in an HttpOnly, SameSite=Strict cookie; a request it
authenticates that changes something must also carry the X-Ocrbatch-CSRF header (which
another site's form cannot send)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..store import TokenInfo
from .context import ServiceContext, context
from .errors import ApiError

__all__ = ["COOKIE", "CSRF_HEADER", "read_scope", "require", "token_of", "write_scope"]

COOKIE = "ocrbatch_token"
CSRF_HEADER = "X-Ocrbatch-CSRF"
_bearer = HTTPBearer(auto_error=False, description="A token from `ocrbatch token create`.")
_SAFE = ("GET", "HEAD", "OPTIONS")


def token_of(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    if credentials is not None and credentials.scheme.lower() == "bearer":
        return credentials.credentials
    return request.cookies.get(COOKIE)


def require(scope: str) -> Callable[..., TokenInfo]:
    """A dependency: the request's token, which must allow ``scope``."""

    def check(
        request: Request,
        ctx: Annotated[ServiceContext, Depends(context)],
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
    ) -> TokenInfo:
        raw = token_of(request, credentials)
        challenge = {"WWW-Authenticate": "Bearer"}
        if not raw:
            raise ApiError(
                401,
                "this route needs a token: Authorization: Bearer TOKEN "
                "(`ocrbatch token create` makes one)",
                challenge,
            )
        info = ctx.token(raw)
        if info is None:
            raise ApiError(401, "unknown or revoked token", challenge)
        if (
            credentials is None
            and request.method not in _SAFE
            and CSRF_HEADER.lower() not in (k.lower() for k in request.headers)
        ):
            raise ApiError(403, f"a request from the dashboard needs the {CSRF_HEADER} header")
        if not info.allows(scope):
            raise ApiError(403, f"token {info.name!r} has scope {info.scope}; this needs {scope}")
        return info

    return check


read_scope = require("read")
write_scope = require("write")
