"""The FastAPI app of ``ocrbatch serve``: the versioned API under /api/v1 (OpenAPI at
/docs and /openapi.json), the dashboard at /, /metrics, /healthz. Its lifespan opens the
store and starts the webhook sender and, unless told not to, the embedded worker."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from .. import __version__
from . import dashboard, documents, jobs, uploads
from .context import ServiceContext
from .embedded import EmbeddedWorker
from .errors import install_error_handlers
from .limits import BodyLimit
from .metrics import make_registry, metrics_payload
from .settings import ServiceSettings
from .webhooks import WebhookSender

__all__ = ["create_app"]

_STATIC = __file__.rsplit("/", 1)[0] + "/static"


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """The service's app over ``settings`` (default: the default store, no allowed
    roots but the service's own inbox and results folders)."""
    settings = settings or ServiceSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = ServiceContext(settings)
        app.state.ctx = ctx
        app.state.metrics = make_registry(ctx)
        if settings.embedded_worker:
            ctx.worker = EmbeddedWorker(settings)
            ctx.worker.start()
        ctx.sender = WebhookSender(ctx.store, settings)
        ctx.sender.start()
        try:
            yield
        finally:
            ctx.stopping.set()
            if ctx.worker is not None:
                ctx.worker.stop()
            ctx.sender.stop()
            ctx.close()

    app = FastAPI(
        title="ocrbatch",
        version=__version__,
        summary="Batch OCR jobs: submit, watch, steer, fetch results.",
        description="Every route but /healthz and /metrics needs a bearer token "
        "(`ocrbatch token create --name NAME --scope read|write`). Errors are "
        '`{"error": "<one line>"}`.',
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(
        BodyLimit,
        max_body=settings.max_body_bytes,
        max_upload=settings.max_upload_bytes,
        upload_prefix="/api/v1/uploads",
        json_paths=("/api/v1/jobs",),
    )
    app.include_router(jobs.router)
    app.include_router(documents.router)
    app.include_router(uploads.router)
    app.include_router(dashboard.router)
    app.mount("/static", StaticFiles(directory=_STATIC), name="static")

    @app.get("/healthz", tags=["service"], summary="Liveness")
    def healthz() -> JSONResponse:
        """200 while the service can read its store; also whether its worker runs."""
        ctx: ServiceContext = app.state.ctx
        ctx.store.job_statuses([0])
        worker = ctx.worker.alive() if ctx.worker is not None else None
        return JSONResponse({"ok": True, "version": __version__, "embedded_worker": worker})

    @app.get(
        "/metrics",
        tags=["service"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}},
    )
    def metrics() -> Response:
        registry, cache = app.state.metrics
        return Response(
            metrics_payload(registry, cache), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    return app
