"""Taking a job in: its config checked at the edge, its output folder checked, the job
created in the store and its inputs discovered into it (streamed, a batch per
transaction, safe to repeat after a crash)."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .config import RunConfig, default_cache_dir, validate
from .discovery import DiscoveryOptions, apart, check_inputs, discover
from .engines import engine_class, validate_engine_options
from .errors import ConfigError, OutputError
from .exporters import temp_prefix
from .inputs import place
from .locations import default_object_cache_dir
from .session import job_config
from .store import JobInfo, Store
from .tools.storage import StorageOptions, check_writable, is_url, local_path

__all__ = [
    "DEFAULT_OUT",
    "ENGINE_SHORTCUTS",
    "check_out",
    "create_job",
    "ingest",
    "make_config",
    "own_paths",
]

# A job without --out writes to ocrbatch-results/job-<id> under the working folder.
DEFAULT_OUT = Path("ocrbatch-results")
# Options of the Tesseract engine that the CLI and the API take by name (--lang eng).
ENGINE_SHORTCUTS = ("lang", "psm", "model", "tessdata")


def make_config(config: RunConfig | Mapping[str, Any] | None = None, **options: Any) -> RunConfig:
    """A validated RunConfig from a config and options named as on the command line
    (``workers=2, format="jsonl,pdf", lang="eng"``); the engine's options are checked by
    the engine's own model, and its models are looked for (a clear error now rather than
    in every worker). Options that are None are left at their defaults."""
    data = config.model_dump() if isinstance(config, RunConfig) else dict(config or {})
    given = {k: v for k, v in options.items() if v is not None}
    shortcuts = {k: given.pop(k) for k in ENGINE_SHORTCUTS if k in given}
    data.update(given)
    if shortcuts:
        engine = str(data.get("engine", RunConfig.model_fields["engine"].default))
        opts = dict(data.get("engine_options") or {})
        if engine == "tesseract":
            opts.update(shortcuts)
        elif engine == "auto":  # the auto engine's Tesseract reads with them
            opts["tesseract"] = {**dict(opts.get("tesseract") or {}), **shortcuts}
        else:
            names = ", ".join(f"--{k}" for k in shortcuts)
            raise ConfigError(
                f"{names} apply to the tesseract and auto engines only (this is {engine!r})"
            )
        data["engine_options"] = opts
    cfg: RunConfig = validate(RunConfig, data, "run")
    opts = validate_engine_options(cfg.engine, cfg.engine_options)
    engine_class(cfg.engine).check(opts)
    return cfg.model_copy(update={"engine_options": opts})


def check_out(out: str | os.PathLike[str], storage_options: StorageOptions | None = None) -> str:
    """The output folder (or bucket prefix), created and proved writable (one
    OutputError line if not): its absolute path, or its URL without a trailing slash."""
    text = local_path(os.fspath(out))
    if is_url(text):
        url = text.rstrip("/")
        check_writable(url, storage_options)
        return url
    out = Path(text).expanduser().resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
        # Named as the atomic writer names its temp files: cleared if we are killed here.
        with tempfile.NamedTemporaryFile(dir=out, prefix=temp_prefix(), suffix=".tmp"):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write to output folder {out}: {exc.strerror or exc}") from None
    return str(out)


def out_root(job: JobInfo) -> str:
    """The output folder to keep out of the job's inputs: the job's own, or all of
    ocrbatch-results/ for a default one (earlier jobs' results are not inputs either)."""
    if job.output_path and is_url(job.output_path):
        return job.output_path
    out = Path(job.output_path or DEFAULT_OUT)
    if out.name == f"job-{job.id}" and out.parent.name == DEFAULT_OUT.name:
        return str(out.parent)
    return str(out)


def own_paths(
    st: Store, cfg: RunConfig, out: str | os.PathLike[str], inputs: Sequence[str]
) -> tuple[tuple[str, str], ...]:
    """(real path or URL, what) of everything ocrbatch itself writes, which is never an
    input: the output folder (or prefix), the job database's files (SQLite), the page
    and object caches, and the output folders of earlier jobs (unless an input named on
    the command line lies in one)."""
    own: list[tuple[str | os.PathLike[str], str]] = [(out, "the output folder")]
    own += [(f, "the job database") for f in st.database_files()]
    own.append((cfg.cache_dir or default_cache_dir(), "the page cache"))
    own.append((default_object_cache_dir(), "the object cache"))
    earlier = [(place(p), f"the output folder of job {j}") for j, p in st.output_folders()]
    return tuple((place(os.fspath(p)), what) for p, what in own) + tuple(apart(inputs, earlier))


def create_job(
    st: Store,
    inputs: Sequence[str],
    out: str | os.PathLike[str] | None,
    cfg: RunConfig,
    *,
    name: str | None = None,
    description: str | None = None,
    force: bool = False,
    priority: int = 0,
    watch: dict[str, Any] | None = None,
) -> JobInfo:
    """Check the inputs and the output folder, then create the job (not discovered
    yet). Nothing is created when an input or the output folder is wrong. ``watch``:
    the settings of a standing job (see :mod:`ocrbatch.watch`)."""
    if cfg.ground_truth and not Path(cfg.ground_truth).is_dir():
        raise ConfigError(f"--ground-truth folder not found: {cfg.ground_truth}")
    options = cfg.storage_options
    root = _out_place(out) if out else str(DEFAULT_OUT.resolve())
    check_inputs(list(inputs), own_paths(st, cfg, root, inputs), options)
    now = dt.datetime.now(dt.UTC)
    first = inputs[0].lstrip("@").rstrip("/")
    job_name = name or f"{Path(first).name or 'job'}-{now:%Y%m%d-%H%M%S}"
    # --out is checked before the job exists; the default folder is named after the job.
    out_path = check_out(out, options) if out else str(Path(check_out(DEFAULT_OUT)) / "job-{id}")
    job_id = st.create_job(
        name=job_name,
        description=description,
        config=cfg.model_dump(mode="json"),
        result_key=cfg.result_key(),
        inputs=list(inputs),
        mode=cfg.mode,
        priority=priority,
        output_path=out_path,
        force=force,
        max_workers=cfg.max_workers,
        page_timeout=cfg.timeout,
        max_retries=cfg.max_retries,
        watch=watch,
    )
    job = st.get_job(job_id)
    if not out:
        check_out(job.output_path or ".")
    return job


def _out_place(out: str | os.PathLike[str]) -> str:
    text = local_path(os.fspath(out))
    return text.rstrip("/") if is_url(text) else str(Path(text).expanduser().resolve())


def ingest(store: Store, job: JobInfo, *, per_transaction: int = 500) -> int:
    """Discover the job's inputs into the store, ``per_transaction`` documents at a time.

    Safe to repeat after a crash: paths the job already has are skipped, so every
    document is stored exactly once; ocrbatch's own files are never inputs (see
    :func:`own_paths`). Returns the number of documents added.
    """
    cfg = job_config(job)
    max_retries = cfg.max_retries if job.max_retries is None else job.max_retries
    options = DiscoveryOptions(
        dpi=cfg.dpi,
        max_pixels=cfg.max_pixels,
        password=cfg.password,
        pages=cfg.pages,
        exclude=own_paths(store, cfg, out_root(job), job.inputs),
        storage_options=cfg.storage_options,
    )
    added = 0
    for docs in discover(job.inputs, per_transaction=per_transaction, options=options):
        known = store.known_paths(job.id, [d.path for d in docs])
        fresh = [d for d in docs if d.path not in known]
        # The same file given twice (two overlapping roots) is one document.
        seen: set[str] = set()
        unique = [d for d in fresh if not (d.path in seen or seen.add(d.path))]  # type: ignore[func-returns-value]
        n, _ = store.add_documents(job.id, unique, max_retries=max_retries, reuse=not job.force)
        added += n
    store.finish_discovery(job.id)
    return added
