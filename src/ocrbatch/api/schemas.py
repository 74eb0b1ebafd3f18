"""The API's request and response bodies (apart from the store's tables: what a client
sees is named as the CLI names it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "DeliveryOut",
    "DocumentOut",
    "DocumentPage",
    "JobIn",
    "JobList",
    "JobOut",
    "UploadOut",
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobIn(_In):
    """A job to create: the inputs and options of `ocrbatch submit`."""

    inputs: list[str] = Field(
        ...,
        min_length=1,
        max_length=1000,
        description="Files, folders or globs below an allowed root.",
    )
    out: str | None = Field(
        None, description="Output folder below an allowed root [default: the service's results/]."
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Job options named as on the command line (format, lang, engine, "
        "preprocess, pages, min_confidence, ...), validated as `ocrbatch submit` does.",
    )
    priority: int = Field(0, ge=-1_000_000, le=1_000_000, description="Higher runs first.")
    queue: str | None = Field(
        None, min_length=1, max_length=100, description="Queue [default: the service's]."
    )
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=10_000)
    force: bool = Field(False, description="OCR again documents already done by an earlier job.")
    callback_url: str | None = Field(
        None,
        max_length=2000,
        description="Receives a signed JSON POST when the job completes, fails, pauses or "
        "is cancelled.",
    )

    @field_validator("callback_url")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return v


class JobOut(BaseModel):
    """A job's figures (as `ocrbatch status --json`), with accuracy and review."""

    job: int
    name: str
    status: str
    mode: str
    priority: int
    queue: str | None
    pages_done: int
    pages_total: int
    pages_failed: int
    documents_done: int
    documents_total: int
    documents_failed: int
    documents_reused: int
    percent: float
    pages_per_s: float | None
    eta_s: float | None
    estimated_completion: str | None
    created_at: str
    owner: str | None
    output_path: str | None
    outputs: str | None
    error: str | None
    engine: str | None = None
    min_confidence: float | None = None
    accuracy: dict[str, Any] | None = None
    review: dict[str, Any] | None = None
    # A standing job (`ocrbatch watch`): its source, settle seconds and done prefix.
    watch: dict[str, Any] | None = None


class JobList(BaseModel):
    jobs: list[JobOut]
    next_offset: int | None


class DocumentOut(BaseModel):
    id: int
    path: str
    rel_path: str
    status: str
    pages: int
    error: str | None
    reused: bool
    processing_time: float | None
    completed_at: str | None


class DocumentPage(BaseModel):
    documents: list[DocumentOut]
    next_after: int | None


class DeliveryOut(BaseModel):
    id: int
    event: str
    url: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: str
    delivered_at: str | None


class UploadOut(BaseModel):
    path: str = Field(..., description="The inbox folder holding the files: use it as an input.")
    files: list[str]
    bytes: int
