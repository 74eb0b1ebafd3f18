"""Distributed mode: pages run in long-lived Ray actors, one per worker slot.

Each actor holds its engine (built once, like a pool worker) and runs one page at a time;
the executor keeps ``queue_depth`` pages queued per actor (4: more than the local pool's
2, as a round trip to another node is longer) so that no actor waits for the coordinator.
Outcomes come back with ``ray.wait`` in completion order. Supervision that Ray does not
do for us is done here:

- a page past its timeout: its actor is killed and replaced (Ray cannot interrupt a
  running actor task), the pages queued behind it go to other actors, uncharged;
- an actor whose process died (segfault, OOM kill) on a page: that page is reported as a
  crash (retried by the store's policy), the pages queued behind it are re-sent;
- an actor lost with its node: all its pages are re-sent to other actors, uncharged;
- page bytes: a node that does not see the coordinator's files (probed once per node:
  same path, same size and mtime) gets each document's bytes through the object store,
  put once per document and shared by its pages; a document in a bucket (s3://...) is
  fetched by the node itself, never through the coordinator.

The store stays with the coordinator; only plain tasks and outcomes cross to Ray.
"""

from __future__ import annotations

import collections
import contextlib
import os
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    ConfigError,
    DocumentError,
    EngineError,
    TaskTimeoutError,
    WorkerCrashedError,
    WorkerStartError,
    reason,
)
from ..model import PageOutcome, PageTask
from ..pipeline import WorkerSpec
from ..tools.images import open_file
from ..tools.storage import is_url
from .ray_actor import BYTES_CACHE, PageWorker, connect, import_ray

__all__ = ["PageWorker", "RayExecutor"]

_MAX_LOST = 3  # re-sends of one page after losing its worker, before it counts as a crash
_MAX_INIT_FAILURES = 3  # actors in a row that fail to start before we give up
_BYTES_CACHE = BYTES_CACHE  # documents whose bytes are kept in the object store


@dataclass(eq=False)
class _Page:
    task: PageTask
    spec: WorkerSpec | None
    lost: int = 0
    ref: Any = None


@dataclass(eq=False)
class _Slot:
    actor: Any
    ready_ref: Any  # None once the actor is up
    node_id: str = ""
    pages: collections.deque[_Page] = field(default_factory=collections.deque)
    head_started: float = 0.0  # when the actor began the first page of ``pages``
    done: int = 0


class RayExecutor:
    """Runs pages on a Ray cluster (``address``: "auto", "ray://host:port", or None for
    RAY_ADDRESS or else a local Ray instance bound to 127.0.0.1)."""

    def __init__(
        self,
        workers: int | None,
        *,
        timeout: float,
        address: str | None = None,
        ship_pages: str = "auto",
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        recycle_after: int = 0,
        queue_depth: int = 4,
        start_timeout: float = 300.0,
    ) -> None:
        if ship_pages not in ("auto", "always", "never"):
            raise ConfigError(f"ship_pages must be auto, always or never, not {ship_pages!r}")
        self.workers = workers or 0
        self._requested = workers
        self.timeout = timeout
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.ship_pages = ship_pages
        self.num_cpus, self.num_gpus = num_cpus, num_gpus
        self.recycle_after = recycle_after
        self.queue_depth = queue_depth
        self.start_timeout = start_timeout
        self._ray: Any = import_ray(self.address)
        self._owns_ray = False
        self._cls: Any = None
        self._spec: WorkerSpec | None = None
        self._slots: list[_Slot] = []
        self._backlog: collections.deque[_Page] = collections.deque()
        self._by_ref: dict[Any, tuple[_Slot, _Page]] = {}
        self._ready: list[PageOutcome] = []  # outcomes made here (unreadable input)
        self._shared: dict[str, bool] = {}  # node id -> sees the coordinator's files
        self._bytes: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._init_failures = 0

    # -- lifecycle ------------------------------------------------------------------
    def start(self, spec: WorkerSpec | None) -> None:
        self._spec = spec
        ray = self._ray
        self._owns_ray = connect(ray, self.address)
        if self._requested is None:
            cpus = float(ray.cluster_resources().get("CPU", 0.0))
            self.workers = max(1, int(cpus // self.num_cpus)) if self.num_cpus else 1
        self._cls = ray.remote(PageWorker).options(
            num_cpus=self.num_cpus,
            num_gpus=self.num_gpus,
            max_restarts=0,
            max_task_retries=0,
        )
        self._slots = [self._new_slot() for _ in range(self.workers)]
        deadline = time.monotonic() + self.start_timeout
        while not any(s.ready_ref is None for s in self._slots):
            if time.monotonic() > deadline:
                self.stop()
                raise ConfigError(
                    f"no Ray worker started within {self.start_timeout:g}s "
                    f"(cluster resources: {ray.cluster_resources()})"
                )
            self._poll(1.0)

    def _new_slot(self) -> _Slot:
        actor = self._cls.remote(self._spec)
        return _Slot(actor=actor, ready_ref=actor.ready.remote())

    def stop(self) -> list[int]:
        ids = [p.task.task_id for p in self._backlog]
        ids += [p.task.task_id for s in self._slots for p in s.pages]
        for s in self._slots:
            self._ray.kill(s.actor, no_restart=True)
        self._slots, self._by_ref = [], {}
        self._backlog.clear()
        return ids

    def close(self) -> None:
        self.stop()
        self._bytes.clear()
        if self._owns_ray:
            self._ray.shutdown()
            self._owns_ray = False

    # -- the seam -------------------------------------------------------------------
    def capacity(self) -> int:
        up = sum(1 for s in self._slots if s.ready_ref is None and not self._retiring(s))
        return max(0, up * self.queue_depth - self.in_flight())

    def in_flight(self) -> int:
        return len(self._backlog) + sum(len(s.pages) for s in self._slots)

    def submit(self, task: PageTask, spec: WorkerSpec | None = None) -> None:
        self._backlog.append(_Page(task, spec))
        self._dispatch()

    def collect(self, timeout: float) -> list[PageOutcome]:
        self._dispatch()
        out = self._poll(timeout)
        self._check_timeouts(out)
        self._dispatch()
        out += self._ready
        self._ready = []
        return out

    def cancel(self, task_ids: Collection[int]) -> None:
        drop = set(task_ids)
        self._backlog = collections.deque(p for p in self._backlog if p.task.task_id not in drop)
        for s in list(self._slots):
            if s.pages and s.pages[0].task.task_id in drop:
                self._by_ref.pop(s.pages.popleft().ref, None)
                self._replace(s, requeue=[p for p in s.pages if p.task.task_id not in drop])
                continue
            for p in [p for p in s.pages if p.task.task_id in drop]:
                s.pages.remove(p)
                self._by_ref.pop(p.ref, None)
                with contextlib.suppress(Exception):  # already finished: nothing to cancel
                    self._ray.cancel(p.ref)

    # -- internals ------------------------------------------------------------------
    def _timeout_of(self, page: _Page) -> float:
        return page.spec.timeout if page.spec is not None and page.spec.timeout else self.timeout

    def _retiring(self, s: _Slot) -> bool:
        return bool(self.recycle_after) and s.done >= self.recycle_after

    def _dispatch(self) -> None:
        while self._backlog:
            open_slots = [
                s
                for s in self._slots
                if s.ready_ref is None and len(s.pages) < self.queue_depth and not self._retiring(s)
            ]
            if not open_slots:
                return
            slot = min(open_slots, key=lambda s: len(s.pages))
            page = self._backlog.popleft()
            data = self._data_for(slot, page.task)
            if isinstance(data, PageOutcome):
                self._ready.append(data)
                continue
            page.ref = slot.actor.process.remote(page.task, page.spec, data)
            if not slot.pages:
                slot.head_started = time.monotonic()
            slot.pages.append(page)
            self._by_ref[page.ref] = (slot, page)

    def _poll(self, timeout: float) -> list[PageOutcome]:
        ray = self._ray
        waiting = [s.ready_ref for s in self._slots if s.ready_ref is not None]
        refs = list(self._by_ref) + waiting
        if not refs:
            if timeout > 0 and not self._ready:
                time.sleep(min(timeout, 0.05))
            return []
        heads = [s.head_started + self._timeout_of(s.pages[0]) for s in self._slots if s.pages]
        if heads:
            timeout = max(0.0, min(timeout, min(heads) - time.monotonic()))
        done, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if done:
            done, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        out: list[PageOutcome] = []
        by_ready = {s.ready_ref: s for s in self._slots if s.ready_ref is not None}
        for ref in done:
            if ref in by_ready:
                self._on_ready(by_ready[ref])
            elif ref in self._by_ref:
                self._on_done(ref, out)
        return out

    def _on_ready(self, slot: _Slot) -> None:
        ray = self._ray
        try:
            slot.node_id = ray.get(slot.ready_ref)
            slot.ready_ref = None
            self._init_failures = 0
        except ray.exceptions.RayActorError as exc:
            if getattr(exc, "actor_init_failed", False):
                self._init_failures += 1
                if self._init_failures >= _MAX_INIT_FAILURES:
                    raise WorkerStartError(f"Ray worker failed to start: {reason(exc)}") from None
            self._replace(slot, requeue=[])

    def _on_done(self, ref: Any, out: list[PageOutcome]) -> None:
        ray = self._ray
        slot, page = self._by_ref.pop(ref)
        if slot not in self._slots:
            return  # an outcome of an actor already replaced: its pages went elsewhere
        try:
            outcome = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            self._by_ref[ref] = (slot, page)
            self._on_actor_lost(slot, exc, out)
            return
        except ray.exceptions.TaskCancelledError:
            outcome = None
        except ray.exceptions.RayError as exc:
            outcome = PageOutcome.failure(page.task, EngineError(f"worker error: {reason(exc)}"))
        if page in slot.pages:
            slot.pages.remove(page)
        slot.head_started = time.monotonic()
        slot.done += 1
        if outcome is not None:
            out.append(outcome)
        if self._retiring(slot) and not slot.pages:
            self._replace(slot, requeue=[])

    def _on_actor_lost(self, slot: _Slot, exc: Exception, out: list[PageOutcome]) -> None:
        """The actor is gone: its process died on the page it ran, or its node died."""
        ray = self._ray
        # Ray's types, then the cluster's own view of the node: an actor that died with
        # its node (or was preempted) cost its pages nothing.
        node_lost = (
            isinstance(exc, ray.exceptions.ActorUnavailableError)
            or bool(getattr(exc, "preempted", False))
            or not self._node_alive(slot.node_id)
        )
        pages = list(slot.pages)
        if pages and not node_lost:
            head = pages.pop(0)
            died = WorkerCrashedError(
                "worker process died (Ray actor lost; segfault or out of memory?)"
            )
            out.append(PageOutcome.failure(head.task, died))
        for p in pages:
            p.lost += 1
            if p.lost > _MAX_LOST:
                lost = WorkerCrashedError(f"worker lost {p.lost} times (nodes died)")
                out.append(PageOutcome.failure(p.task, lost))
        self._replace(slot, requeue=[p for p in pages if p.lost <= _MAX_LOST])

    def _node_alive(self, node_id: str) -> bool:
        """Is the node this actor ran on still alive (the cluster's own record)?"""
        if not node_id:
            return True
        try:
            return any(n["NodeID"] == node_id and n["Alive"] for n in self._ray.nodes())
        except self._ray.exceptions.RayError:
            return True  # cannot tell: count it as a crash of the page

    def _check_timeouts(self, out: list[PageOutcome]) -> None:
        now = time.monotonic()
        for s in list(self._slots):
            if s.pages and now - s.head_started > self._timeout_of(s.pages[0]):
                head = s.pages.popleft()
                self._by_ref.pop(head.ref, None)
                t = self._timeout_of(head)
                late = TaskTimeoutError(
                    f"timed out after {t:g}s; the worker was killed and replaced"
                )
                out.append(PageOutcome.failure(head.task, late, processing_time=t))
                self._replace(s, requeue=list(s.pages))

    def _replace(self, slot: _Slot, requeue: list[_Page]) -> None:
        """Kill ``slot``'s actor, start a new one, and send ``requeue`` elsewhere first."""
        for p in slot.pages:
            self._by_ref.pop(p.ref, None)
        slot.pages.clear()
        with contextlib.suppress(Exception):  # the actor (or its node) may be gone already
            self._ray.kill(slot.actor, no_restart=True)
        i = self._slots.index(slot)
        self._slots[i] = self._new_slot()
        for p in reversed(requeue):
            p.ref = None
            self._backlog.appendleft(p)

    def _data_for(self, slot: _Slot, task: PageTask) -> Any:
        """None (the node reads the file itself), an object ref of the document's bytes,
        or a failure outcome when the coordinator cannot read the file either."""
        if self.ship_pages == "never" or is_url(task.path):
            return None  # the node reads the file itself (an object: from its bucket)
        if self.ship_pages == "auto":
            shared = self._shared.get(slot.node_id)
            if shared is None:
                shared = self._shared[slot.node_id] = self._probe(slot, task.path)
            if shared:
                return None
        ref = self._bytes.get(task.path)
        if ref is not None:
            self._bytes.move_to_end(task.path)
            return ref
        try:
            with open_file(task.path) as f:
                data = f.read()
        except DocumentError as exc:
            return PageOutcome.failure(task, exc)
        ref = self._ray.put(data)
        self._bytes[task.path] = ref
        while len(self._bytes) > _BYTES_CACHE:
            self._bytes.popitem(last=False)
        return ref

    def _probe(self, slot: _Slot, path: str) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return True  # nothing to ship: the worker reports the missing file itself
        try:
            probe = slot.actor.sees.remote(path, st.st_size, st.st_mtime_ns)
            seen = self._ray.get(probe, timeout=30)
        except Exception:
            return False
        return bool(seen)
