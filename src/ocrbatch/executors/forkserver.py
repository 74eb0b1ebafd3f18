"""The worker pool's forkserver: one process that imports the pipeline, preprocessing
and the engine's libraries once; every worker (and every replacement of a recycled or
killed one) is forked from it with those already loaded.

:func:`start` is called by the local pool as it starts and, earlier, by the console
entry (:mod:`ocrbatch.console`) for the commands that run pages here: the forkserver's
imports (about 0.4 s on the dev machine) then run on another core while the CLI imports
its own (about 0.5 s), instead of after them. The first call starts the server; later
calls find it running (its preload list is fixed by then, so the same list is named
each time). This module imports nothing heavy: the entry imports it before the CLI.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os

__all__ = ["ENGINE_ENV", "PRELOAD", "start"]

# Read by ocrbatch.executors.warm in the forkserver as it starts: the engine to import.
ENGINE_ENV = "OCRBATCH_FORKSERVER_ENGINE"
PRELOAD = ("ocrbatch.pipeline", "ocrbatch.preprocess", "ocrbatch.executors.warm")


def start(engine: str | None) -> multiprocessing.context.ForkServerContext:
    """Start the forkserver (unless it runs) with the pipeline and ``engine``'s modules
    imported (``engine`` None: the default engine; "": none, a queue worker whose tasks
    bring their own); returns the context to build pools on. It returns at once: the
    imports run in the server, and the first worker waits for them."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    os.environ[ENGINE_ENV] = "-" if engine is None else engine
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        del os.environ[ENGINE_ENV]
    return ctx
