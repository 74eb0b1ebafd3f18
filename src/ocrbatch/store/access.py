"""API tokens of the REST service: created once (the token is shown then and stored as
its SHA-256), looked up by hash on each request, revoked by name or id."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import insert, or_, select, update

from ..errors import ConfigError
from .common import StoreParts, utcnow
from .tables import api_tokens

__all__ = ["SCOPES", "AccessOps", "TokenInfo", "hash_token"]

SCOPES = ("read", "write")
_PREFIX = "ocb_"


def hash_token(token: str) -> str:
    """What the store keeps of a token (256 random bits: a plain SHA-256 is enough)."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as the store knows it (never the token itself)."""

    id: int
    name: str
    scope: str
    webhook_secret: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    def allows(self, scope: str) -> bool:
        """write includes read."""
        return self.revoked_at is None and SCOPES.index(self.scope) >= SCOPES.index(scope)


class AccessOps(StoreParts):
    """API tokens of :class:`~ocrbatch.store.Store` (a mixin over its engine)."""

    def create_token(self, name: str, scope: str) -> tuple[str, TokenInfo]:
        """A new token: (the token, shown once; what the store keeps)."""
        if scope not in SCOPES:
            raise ConfigError(f"--scope: must be one of {', '.join(SCOPES)} (given: {scope!r})")
        if not name or len(name) > 100:
            raise ConfigError("--name: give a name of 1 to 100 characters")
        token = _PREFIX + secrets.token_urlsafe(32)
        with self._begin() as c:
            c.execute(
                insert(api_tokens).values(
                    name=name,
                    token_hash=hash_token(token),
                    scope=scope,
                    webhook_secret=secrets.token_hex(32),
                    created_at=utcnow(),
                )
            )
        return token, self.token_by_hash(hash_token(token), live=False)  # type: ignore[return-value]

    def token_by_hash(self, token_hash: str, *, live: bool = True) -> TokenInfo | None:
        """The token with this hash (``live``: only if not revoked)."""
        q = select(api_tokens).where(api_tokens.c.token_hash == token_hash)
        if live:
            q = q.where(api_tokens.c.revoked_at.is_(None))
        with self._read() as c:
            row = c.execute(q).mappings().first()
        return None if row is None else _info(row)

    def token_by_id(self, token_id: int) -> TokenInfo | None:
        with self._read() as c:
            row = c.execute(select(api_tokens).where(api_tokens.c.id == token_id)).mappings()
            first = row.first()
        return None if first is None else _info(first)

    def list_tokens(self) -> list[TokenInfo]:
        with self._read() as c:
            rows = c.execute(select(api_tokens).order_by(api_tokens.c.id)).mappings()
            return [_info(r) for r in rows]

    def revoke_token(self, ref: str) -> int:
        """Revoke the live tokens named ``ref`` (or with id ``ref``); returns how many."""
        cond = api_tokens.c.name == ref
        if ref.isdigit():
            cond = or_(cond, api_tokens.c.id == int(ref))
        with self._begin() as c:
            res = c.execute(
                update(api_tokens)
                .where(cond, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            n = int(res.rowcount or 0)
        return n


def _info(row: object) -> TokenInfo:
    r = dict(row)  # type: ignore[call-overload]
    return TokenInfo(
        id=r["id"],
        name=r["name"],
        scope=r["scope"],
        webhook_secret=r["webhook_secret"],
        created_at=r["created_at"],
        revoked_at=r["revoked_at"],
    )
