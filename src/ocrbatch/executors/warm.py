"""Imported only by the pool's forkserver as it starts (see
:mod:`ocrbatch.executors.forkserver`): imports the engine named in the server's
environment and the libraries it declares (``preload``), so that workers fork with them
loaded. Importing is this module's whole purpose, hence its side effect; anywhere the
variable is not set it does nothing. It never fails: a wrong engine name or a missing
library is reported by the command itself, and a forkserver that failed here would
break every worker."""

from __future__ import annotations

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
    except Exception:  # noqa: S110 - see the module docstring
        pass


_name = os.environ.get(ENGINE_ENV)
if _name:
    _import_engine(_name)
