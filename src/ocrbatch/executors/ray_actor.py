"""The Ray side of distributed mode: the actor (one engine process on a cluster node,
reading one page at a time, from the coordinator's path when the node sees it, else from
bytes shipped through Ray's object store; a plain class that ``ray.remote`` wraps at
start), and the connection to the cluster."""

from __future__ import annotations

import collections
import os
import shutil
import tempfile
from dataclasses import replace
from typing import Any

from ..errors import ConfigError, reason
from ..model import PageOutcome, PageTask
from ..pipeline import WorkerSpec, init_worker, process_page

__all__ = ["BYTES_CACHE", "PageWorker", "connect", "import_ray"]

BYTES_CACHE = 16  # documents whose shipped bytes an actor keeps as local copies


class PageWorker:
    """The Ray actor: one engine process. Plain class; ``ray.remote`` wraps it at start."""

    def __init__(self, spec: WorkerSpec | None) -> None:
        init_worker(spec)
        import ray

        self.node_id: str = ray.get_runtime_context().get_node_id()
        self._tmp = tempfile.TemporaryDirectory(prefix="ocrbatch-ray-")
        self._copies: collections.OrderedDict[str, str] = collections.OrderedDict()

    def ready(self) -> str:
        """The actor's node id (the executor probes file visibility per node)."""
        return self.node_id

    def sees(self, path: str, size: int, mtime_ns: int) -> bool:
        """Does this node see the coordinator's file (a shared filesystem)?"""
        try:
            st = os.stat(path)
        except OSError:
            return False
        return st.st_size == size and st.st_mtime_ns == mtime_ns

    def process(self, task: PageTask, spec: WorkerSpec | None, data: bytes | None) -> PageOutcome:
        if data is not None:
            # Bytes shipped by the coordinator: the page is read from a local copy, so
            # every input kind (images, TIFF frames, PDFs, text layers) works unchanged.
            task = replace(task, path=self._local_copy(task.path, data))
        out = process_page(task, spec)
        return replace(out, worker_id=f"{out.worker_id}@{self.node_id[:8]}")

    def _local_copy(self, path: str, data: bytes) -> str:
        """A file in this actor's temp folder with ``data``, kept for the document's next
        pages (the last few documents), named with the original's extension."""
        local = self._copies.get(path)
        if local is None:
            # Same base name as the original (engines and messages may show it), in a
            # folder of its own so that two documents of the same name never collide.
            folder = tempfile.mkdtemp(dir=self._tmp.name)
            local = os.path.join(folder, os.path.basename(path))
            with open(local, "wb") as f:
                f.write(data)
            self._copies[path] = local
            while len(self._copies) > BYTES_CACHE:
                old = self._copies.popitem(last=False)[1]
                shutil.rmtree(os.path.dirname(old), ignore_errors=True)
        else:
            self._copies.move_to_end(path)
        return local


def import_ray(address: str | None) -> Any:
    """Import Ray, or say how to install it."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address is None:
        # A local instance: every Ray process on the loopback address only (Ray's switch
        # for that is this variable, read when Ray is imported).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "distributed mode needs Ray, which is not installed: pip install 'ocrbatch[ray]'"
        ) from None
    return ray


def connect(ray: Any, address: str | None) -> bool:
    """Connect to the cluster at ``address`` (or start a local instance) unless this
    process is connected already; True if this call started the connection (then
    ``close`` shuts it down)."""
    if ray.is_initialized():
        return False
    try:
        if address is None:
            ray.init(
                address="local",
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    except Exception as exc:
        where = address or "a local Ray instance"
        raise ConfigError(f"cannot start or reach {where}: {reason(exc)}") from None
    return True
