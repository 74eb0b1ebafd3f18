"""The dashboard: server-rendered pages (Jinja2) with a few KB of plain JS that follow
the API (no build step). The jobs list polls /api/v1/jobs once a second; a job's page
follows its server-sent events and pages through documents, failures and the review
list, so a job of 10,000 documents loads one page of each at a time.

A browser cannot send a bearer header on navigation: /login keeps the token in an
HttpOnly, SameSite=Strict cookie, which the API accepts as well (see auth.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ..errors import OcrbatchError
from ..store import TokenInfo
from .auth import COOKIE, CSRF_HEADER
from .context import ServiceContext, context

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
Ctx = Annotated[ServiceContext, Depends(context)]


def _viewer(request: Request, ctx: ServiceContext) -> TokenInfo | None:
    raw = request.cookies.get(COOKIE)
    info = ctx.token(raw) if raw else None
    return info if info is not None and info.allows("read") else None


def _login() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, ctx: Ctx, token: Annotated[str, Form(max_length=200)]) -> Response:
    info = ctx.token(token.strip())
    if info is None:
        return templates.TemplateResponse(
            request, "login.html", {"error": "unknown or revoked token"}, status_code=401
        )
    resp = RedirectResponse("/", status_code=303)
    resp.set_cookie(
        COOKIE,
        token.strip(),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return resp


@router.get("/logout")
def logout() -> Response:
    resp = _login()
    resp.delete_cookie(COOKIE)
    return resp


@router.get("/", response_class=HTMLResponse)
def jobs_page(request: Request, ctx: Ctx) -> Response:
    viewer = _viewer(request, ctx)
    if viewer is None:
        return _login()
    jobs = [ctx.describe(j) for j in ctx.store.list_jobs(50)]
    return templates.TemplateResponse(
        request, "jobs.html", {"jobs": jobs, "viewer": viewer, "csrf": CSRF_HEADER}
    )


@router.get("/jobs/{job}", response_class=HTMLResponse)
def job_page(request: Request, job: str, ctx: Ctx) -> Response:
    viewer = _viewer(request, ctx)
    if viewer is None:
        return _login()
    try:
        d = ctx.status(job, fresh=True)
    except OcrbatchError as exc:
        return templates.TemplateResponse(
            request, "missing.html", {"error": exc.message, "viewer": viewer}, status_code=404
        )
    accuracy = d.get("accuracy") or {}
    return templates.TemplateResponse(
        request,
        "job.html",
        {
            "job": d,
            "viewer": viewer,
            "csrf": CSRF_HEADER,
            "folders": sorted((accuracy.get("by_folder") or {}).items()),
            "accuracy": accuracy or None,
        },
    )
