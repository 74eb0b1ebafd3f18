"""The ``ocrbatch`` console script's entry: starts the worker pool's forkserver, then the
CLI.

A command that reads pages on this machine (``run``, ``resume``, ``retry-failed``,
``watch``) needs the pool's forkserver, whose imports (the pipeline, OpenCV, the
engine: about 0.4 s on the dev machine) used to start only after the CLI's own imports
(Typer, SQLAlchemy, the service: about 0.5 s). Started here, from a look at the
arguments before anything heavy is imported, they overlap on another core. The look
only guesses: a guess that is wrong costs one idle process for the command's life (the
pool starts the server it needs either way), and the CLI still parses the arguments.
"""

from __future__ import annotations

import sys

__all__ = ["main"]

POOL_COMMANDS = frozenset({"run", "resume", "retry-failed", "watch"})


def main() -> None:
    _mark_script()
    engine = pool_engine(sys.argv[1:])
    if engine is not None:
        from .executors import forkserver

        forkserver.start(engine or None)
    from .cli.app import main as cli_main  # the whole CLI: imported here, after the start

    try:
        cli_main()
    finally:
        _skip_final_collections()


def _skip_final_collections() -> None:
    """Let the interpreter exit without its final garbage collections.

    As Python exits it clears every module and runs full collections over everything
    the CLI loaded (Typer, Rich, SQLAlchemy, pydantic: some 70,000 objects): about 0.12 s
    of CPU on the dev machine after the command's last output, for every command. Frozen
    objects (``gc.freeze``) are left out of those collections. Everything else still
    runs: atexit handlers, logging's shutdown, multiprocessing's cleanup, stream flushes;
    what is skipped is only finding reference cycles in memory that is about to be
    returned to the system. The store and every output file are closed by the command
    before this (context managers), never left to a collector."""
    import gc

    gc.freeze()


def pool_engine(args: list[str]) -> str | None:
    """The engine to preload when ``args`` run pages in a local pool ("" for the default
    engine), else None (another command, help, distributed mode)."""
    if not POOL_COMMANDS.intersection(args) or {"--help", "-h"}.intersection(args):
        return None
    engine = ""
    for i, a in enumerate(args):
        if a == "--":
            break
        value = args[i + 1] if i + 1 < len(args) else ""
        if a.startswith("--mode=") or a == "--mode":
            if (a[7:] or value) == "distributed":
                return None
        elif a.startswith("--engine="):
            engine = a[9:]
        elif a == "--engine":
            engine = value
    return engine


def _mark_script() -> None:
    """Workers (multiprocessing's forkserver) run the main script again as they start,
    to find what it defines, unless it is a package's ``__main__``, as with ``python -m
    ocrbatch``. The console script only calls this main(): marked as
    ``ocrbatch.__main__``, neither the forkserver nor each worker (nor each one that
    replaces a recycled one) imports the whole CLI, Typer and SQLAlchemy included, as it
    starts (a worker opened 710 files as it started, 310 after; a one-page job took 2.06
    s, 1.73 s after, means of 4 alternating runs). Done before the forkserver starts."""
    import importlib.machinery

    script = sys.modules.get("__main__")
    if script is not None and script.__spec__ is None and getattr(script, "main", None) is main:
        script.__spec__ = importlib.machinery.ModuleSpec("ocrbatch.__main__", None)
