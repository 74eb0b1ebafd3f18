"""Commands of the REST service: ``ocrbatch serve`` and ``ocrbatch token``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..errors import ConfigError
from ..outputs import cli_hint
from ..status import open_store
from .app import app, err, out, output_options
from .options import DbOpt

__all__: list[str] = []

token_app = typer.Typer(
    help="API tokens of `ocrbatch serve` (stored hashed).", no_args_is_help=True
)
app.add_typer(token_app, name="token")


def _extra_missing(what: str) -> typer.Exit:
    err.print(f"error: {what} needs the service extra: pip install 'ocrbatch[service]'")
    return typer.Exit(2)


@app.command()
@output_options
def serve(
    host: Annotated[str, typer.Option(metavar="HOST", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", min=0, max=65535, help="Port.")] = 8000,
    db: DbOpt = None,
    allow_root: Annotated[
        list[Path] | None,
        typer.Option(
            "--allow-root",
            metavar="PATH",
            help="A folder whose files jobs may read and write (repeat it); the service's "
            "own inbox and results folders are always allowed.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-j",
            metavar="N",
            min=1,
            help="Worker processes of the embedded queue worker [default: from cores and memory].",
        ),
    ] = None,
    no_workers: Annotated[
        bool,
        typer.Option(
            "--no-workers",
            metavar="",
            help="No embedded worker: `ocrbatch worker` processes take the jobs.",
        ),
    ] = False,
    queue: Annotated[
        str, typer.Option(metavar="NAME", help="The queue jobs go to and the worker takes.")
    ] = "default",
    state_dir: Annotated[
        Path | None,
        typer.Option(
            metavar="PATH",
            help="Where uploads (inbox/) and jobs without an output folder (results/) go "
            "[default: service/ in ~/.local/share/ocrbatch].",
        ),
    ] = None,
    max_upload_mb: Annotated[
        int, typer.Option(metavar="MB", min=1, help="Largest upload request (at least 1).")
    ] = 100,
) -> None:
    """Serve the REST API (/docs), the live dashboard (/) and /metrics over the job
    store, with an embedded queue worker.

    - ocrbatch token create --name alice --scope write
    - ocrbatch serve --allow-root /data/scans --allow-root /data/ocr
    """
    try:
        import uvicorn

        from ..api import ServiceSettings, create_app
    except ImportError as exc:
        raise _extra_missing(f"ocrbatch serve ({exc.name})") from None
    from ..config import default_db_url

    kwargs = {"state_dir": str(state_dir.expanduser().resolve())} if state_dir else {}
    settings = ServiceSettings(
        db=db or default_db_url(),
        allow_roots=tuple(str(p.expanduser().resolve()) for p in allow_root or ()),
        workers=workers,
        embedded_worker=not no_workers,
        queue=queue,
        max_upload_bytes=max_upload_mb << 20,
        **kwargs,  # type: ignore[arg-type]
    )
    open_store(settings.db).close()  # a bad --db is one line now, not a traceback later
    err.print(f"ocrbatch serving http://{host}:{port}/ (API: /docs); allowed roots: "
              f"{', '.join(settings.roots())}")  # fmt: skip
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=5,
        # Pollers (dashboards, scripts) reuse their connection between polls.
        timeout_keep_alive=30,
    )


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(metavar="NAME", help="Who or what uses it.")],
    scope: Annotated[str, typer.Option(metavar="SCOPE", help="read or write.")] = "read",
    db: DbOpt = None,
) -> None:
    """Create a token; it is printed once (the store keeps only its hash), with the
    secret that signs the webhooks of the jobs it submits."""
    with open_store(db) as st:
        token, info = st.create_token(name, scope)
    out.print(token, soft_wrap=True)
    err.print(
        f"token {info.id} ({info.name}, {info.scope}) created; it is not shown again.\n"
        f"webhook secret (HMAC-SHA256 of X-Ocrbatch-Signature): {info.webhook_secret}"
    )


@token_app.command("list")
def token_list(db: DbOpt = None) -> None:
    """The tokens (names, scopes, revoked or not; never the tokens themselves)."""
    with open_store(db, create=False) as st:
        rows = st.list_tokens()
    t = Table("id", "name", "scope", "created", "revoked")
    for r in rows:
        t.add_row(
            str(r.id),
            r.name,
            r.scope,
            f"{r.created_at.astimezone():%Y-%m-%d %H:%M}",
            f"{r.revoked_at.astimezone():%Y-%m-%d %H:%M}" if r.revoked_at else "",
        )
    out.print(t)


@token_app.command("revoke")
def token_revoke(
    token: Annotated[str, typer.Argument(metavar="NAME_OR_ID", help="The token's name or id.")],
    db: DbOpt = None,
) -> None:
    """Revoke a token (the service stops taking it within 5 seconds)."""
    with open_store(db, create=False) as st:
        n = st.revoke_token(token)
        if not n:
            raise ConfigError(f"no live token {token!r} (`{cli_hint('token list', None, st.url)}` "
                              "shows them)")  # fmt: skip
    out.print(f"{n} token{'s' if n > 1 else ''} revoked")
