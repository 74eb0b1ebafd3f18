"""Imported only by the pool's forkserver as it starts (see
:mod:`ocrbatch.executors.forkserver`): imports the engine named in the server's
environment and the libraries it declares (``preload``), so that workers fork with them
loaded. Importing is this module's whole purpose, hence its side effect; anywhere the
variable is not set it does nothing. It never fails: a wrong engine name or a missing
library is reported by the command itself, and a forkserver that failed here would
break every worker."""

from __future__ import annotations

import gc
import importlib
import os

from .forkserver import ENGINE_ENV


def _import_engine(name: str) -> None:
    try:
        from ..engines.base import engine_class, engine_preload

        if name == "-":
            from ..config import RunConfig

            name = RunConfig.model_fields["engine"].default
        if engine_class(name).batched:
            return  # served by the batch executor, whose forkserver must not load torch
        for module in engine_preload(name):
            importlib.import_module(module)
        from ..pipeline import open_before_fork

        open_before_fork(name)  # an engine that declares opens_before_fork
    except Exception:  # noqa: S110 - see the module docstring
        pass


_name = os.environ.get(ENGINE_ENV)
if _name is not None:  # in the forkserver
    if _name:
        _import_engine(_name)
    # The last preload: what the server imported is frozen (gc.freeze, as the gc
    # module's documentation advises before forking without exec). The workers'
    # collections then never walk those objects (nor touch, and so copy, the pages they
    # share with the server), and the server exits without collecting them: it holds
    # the command's stdout and stderr until it has exited, so a caller reading them (a
    # pipe, ``$(ocrbatch ...)``, subprocess) waited 0.05-0.09 s more for its final
    # collections (dev machine, a 3-page job; 0.015-0.024 s frozen).
    gc.freeze()
