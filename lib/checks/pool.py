"""The app's check workers: checks run in processes of their own, fairly shared, and the memory comes back.

One :class:`CheckPool` per app process (:class:`lib.services.Services` holds it).
A page submits a check under a key (the upload job's id) and its owner (the
signed-in user), then polls :meth:`CheckPool.state` (waiting at position N,
running with progress, or done) and :meth:`CheckPool.take` s the outcome.

How it works:

* Workers are processes from a ``forkserver`` that preloaded :mod:`lib.checks.worker`
  (OpenCV, SciPy, the pipeline), so a worker starts in milliseconds; the
  threaded web server is never forked. They start only when a check needs one,
  at most ``limits.total`` of them, and exit after ``idle_exit_s`` without work
  or after ``checks_per_worker`` checks, so their memory returns to the system.
* Which waiting check starts next is :class:`lib.checks.scheduler.FairQueue`'s
  call: per-user queues served round-robin under the per-user and total caps.
* One collector thread in the web process starts workers, hands them checks,
  and reads every worker's pipe (progress and outcomes) and exit. It sleeps in
  ``wait()`` when nothing runs, so an idle pool costs no CPU.
* Cancel kills the worker's process group (the worker and the ffmpeg it may be
  running) and removes the check's workdir. A worker that dies mid-check (say,
  the kernel's out-of-memory killer) ends its check as FAILED with a message that
  says so; the page offers to check again.
"""

from __future__ import annotations

import contextlib
import io
import logging
import multiprocessing
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from enum import StrEnum
from multiprocessing import forkserver, popen_forkserver, reduction, spawn, util
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext, ForkServerProcess, set_spawning_popen
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING

from lib.checks.scheduler import CheckLimits, FairQueue
from lib.checks.values import CheckOutcome, Task
from lib.memory import trim_heap

if TYPE_CHECKING:
    from lib.pipeline.progress import Progress

log = logging.getLogger(__name__)

PRELOAD = "lib.checks.worker"
"""The module the forkserver imports once, so every worker starts with the check's libraries loaded."""
DEFAULT_IDLE_EXIT_S = 30.0
"""A worker with nothing to do for this long exits (its memory goes back to the system)."""
DEFAULT_CHECKS_PER_WORKER = 20
"""A worker exits after this many checks, so nothing a check leaves behind in it can pile up."""
UNCLAIMED_S = 3_600.0
"""An outcome nobody took for this long is dropped (its browser session is gone); a page that comes back
checks the file again."""
STOP_WAIT_S = 5.0
"""How long a worker told to stop gets before it is killed."""
DIED = ("The check of {name} stopped: the process checking it ended unexpectedly (perhaps the server ran "
        "short of memory). Nothing is lost: check it again, or discard the file.")
CANCELLED = "You cancelled the check of {name}. Its file is kept: check it again, or discard it."
NO_WORKER = ("The server could not start a process to check {name} ({reason}). Check it again in a minute; "
             "if it keeps happening, ask the server's administrator.")


class Phase(StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"


@dataclass(frozen=True)
class CheckState:
    """Where one check stands, as a page shows it."""

    phase: Phase
    position: int | None = None
    """While waiting: its place in the order checks start (1 = next)."""
    progress: Progress | None = None
    """The latest report of the check's own steps (fetch, validate, probe, thumbnail, preview, checksum)."""
    pulse: Progress | None = None
    """The latest report of the quick-look pulse analysis."""
    outcome: CheckOutcome | None = None


@dataclass
class _Entry:
    task: Task
    owner: str
    state: CheckState = field(default_factory=lambda: CheckState(Phase.WAITING))
    done_at: float = 0.0


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    key: str | None = None
    """The check it runs now."""
    checks: int = 0
    idle_since: float = field(default_factory=time.monotonic)
    closed: bool = False
    """Its pipe reached EOF: it is gone or going (its sentinel tells the collector when)."""


class CheckPool:
    """Check workers owned by the app; thread-safe."""

    def __init__(self, limits: CheckLimits, *, idle_exit_s: float = DEFAULT_IDLE_EXIT_S,
                 checks_per_worker: int = DEFAULT_CHECKS_PER_WORKER, context: BaseContext | None = None) -> None:
        self.limits = limits
        self.idle_exit_s = idle_exit_s
        self.checks_per_worker = checks_per_worker
        self._context = context
        self._lock = threading.Lock()
        self._queue = FairQueue(limits)
        self._entries: dict[str, _Entry] = {}
        self._workers: list[_Worker] = []
        self._doomed: list[_Worker] = []
        """Workers killed by a cancel, reaped by the collector once they are gone."""
        self._wake_r, self._wake_w = os.pipe()
        self._collector: threading.Thread | None = None
        self._closed = False
        self._trim_due = False
        """A check ended since the heap was last trimmed."""

    # --- what pages call --------------------------------------------------------------------------------

    def submit(self, key: str, owner: str, task: Task) -> None:
        """Queue a check; a finished one under the same key (not taken yet) is replaced."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the check pool is closed")
            entry = self._entries.get(key)
            if entry is not None and entry.state.phase is not Phase.DONE:
                raise ValueError(f"check {key!r} is already waiting or running")
            self._entries[key] = _Entry(task, owner)
            self._queue.add(key, owner)
            self._ensure_collector()
        self._wake()

    def state(self, key: str) -> CheckState | None:
        """None if the pool does not know this key (never submitted, taken, or dropped)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.state.phase is Phase.WAITING:
                return replace(entry.state, position=self._queue.position(key))
            return entry.state

    def take(self, key: str) -> CheckOutcome | None:
        """The outcome of a finished check, handed over once (the pool forgets it); None if not finished."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.state.phase is not Phase.DONE:
                return None
            del self._entries[key]
            return entry.state.outcome

    def cancel(self, key: str) -> None:
        """Stop a waiting or running check: its worker is killed, its workdir removed; it ends as FAILED."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.state.phase is Phase.DONE:
                return
            self._stop_check(key, entry, CANCELLED.format(name=entry.task.name))
        self._wake()

    def forget(self, key: str) -> None:
        """Cancel if needed, and drop the outcome too (the job is gone)."""
        self.cancel(key)
        with self._lock:
            self._entries.pop(key, None)

    def counts(self) -> tuple[int, int, int]:
        """(waiting, running, worker processes alive) right now."""
        with self._lock:
            return self._queue.waiting_count, self._queue.running_count, len(self._workers)

    def close(self) -> None:
        """Stop every check and worker (the app is shutting down, or a test is done)."""
        with self._lock:
            self._closed = True
            for key, entry in list(self._entries.items()):
                if entry.state.phase is not Phase.DONE:
                    self._stop_check(key, entry, CANCELLED.format(name=entry.task.name))
            workers, self._workers = self._workers + self._doomed, []
            self._doomed = []
        self._wake()
        if self._collector is not None:
            self._collector.join(timeout=STOP_WAIT_S)
        for worker in workers:
            self._stop_worker(worker)

    # --- the collector thread -----------------------------------------------------------------------------

    def _ensure_collector(self) -> None:
        if self._collector is None or not self._collector.is_alive():
            self._collector = threading.Thread(target=self._collect, name="pulsevault-checks", daemon=True)
            self._collector.start()

    def _collect(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
            self._dispatch()
            with self._lock:
                conns = {w.conn: w for w in self._workers if not w.closed}
                sentinels = {w.process.sentinel: w for w in [*self._workers, *self._doomed]}
                timeout = self._next_deadline()
            ready = wait([self._wake_r, *conns, *sentinels], timeout)
            if self._wake_r in ready:
                os.read(self._wake_r, 4096)
            for conn in (r for r in ready if r in conns):
                self._read(conns[conn])
            for sentinel in (r for r in ready if r in sentinels):
                self._reap(sentinels[sentinel])
            self._tidy()

    def _dispatch(self) -> None:
        """Start every check the caps allow now, each on an idle worker or a new one."""
        while True:
            with self._lock:
                if self._closed or (picked := self._queue.start_next()) is None:
                    return
                key = picked[0]
                entry = self._entries[key]
                worker = next((w for w in self._workers if w.key is None), None)
                entry.state = CheckState(Phase.RUNNING)
            if worker is None:
                worker = self._start_worker(key, entry)
                if worker is None:
                    continue
            with self._lock:
                if self._entries.get(key) is not entry or entry.state.phase is not Phase.RUNNING:
                    continue  # cancelled while its worker was starting
                worker.key = key
            with contextlib.suppress(OSError):  # a worker that died just now is reported by its sentinel
                worker.conn.send((key, entry.task))

    def _start_worker(self, key: str, entry: _Entry) -> _Worker | None:
        from lib.checks.worker import serve  # heavy (OpenCV, SciPy): loaded here, on the collector thread

        parent, child = multiprocessing.Pipe()
        try:
            process = self._process_class()(target=serve, args=(child,), name="pulsevault-check", daemon=True)
            process.start()
        except Exception as exc:  # any failure to start is reported on the card
            log.exception("could not start a check worker")
            parent.close()
            reason = type(exc).__name__
            with self._lock:
                self._finish(key, entry, CheckOutcome.failed(NO_WORKER.format(name=entry.task.name, reason=reason)))
            return None
        finally:
            child.close()
        worker = _Worker(process, parent)
        with self._lock:
            self._workers.append(worker)
        return worker

    def _process_class(self) -> type[BaseProcess]:
        if self._context is not None:
            return self._context.Process
        multiprocessing.get_context("forkserver").set_forkserver_preload([PRELOAD])
        return _WorkerProcess

    def _read(self, worker: _Worker) -> None:
        """Every message the worker has sent so far; a closed pipe means it is gone (its sentinel says more)."""
        try:
            while worker.conn.poll():
                kind, key, payload = worker.conn.recv()
                with self._lock:
                    self._handle(worker, kind, key, payload)
        except (EOFError, OSError):
            worker.closed = True

    def _handle(self, worker: _Worker, kind: str, key: str, payload: object) -> None:
        entry = self._entries.get(key)
        current = entry is not None and worker.key == key and entry.state.phase is Phase.RUNNING
        if kind in ("progress", "pulse") and current:
            assert entry is not None
            entry.state = replace(entry.state, **{kind: payload})
        elif kind == "done":
            worker.key, worker.checks, worker.idle_since = None, worker.checks + 1, time.monotonic()
            if current:
                assert entry is not None and isinstance(payload, CheckOutcome)
                self._finish(key, entry, payload)

    def _reap(self, worker: _Worker) -> None:
        """A worker ended: expected (told to stop, or killed by a cancel) or not (its check fails)."""
        with self._lock:
            if worker in self._doomed:
                self._doomed.remove(worker)
            elif worker in self._workers:
                self._workers.remove(worker)
                key = worker.key
                if key is not None and (entry := self._entries.get(key)) is not None:
                    log.error("check worker %s ended (exit code %s) while checking %s",
                              worker.process.pid, worker.process.exitcode, entry.task.name)
                    self._finish(key, entry, CheckOutcome.failed(DIED.format(name=entry.task.name)))
                    _remove_workdir(entry.task)
        _kill_group(worker)  # an ffmpeg it started must not run on
        worker.process.join(timeout=STOP_WAIT_S)
        worker.conn.close()

    def _tidy(self) -> None:
        """Retire idle and worn workers, drop unclaimed outcomes, give freed memory back when all is quiet."""
        now = time.monotonic()
        with self._lock:
            retiring = [w for w in self._workers if w.key is None and (
                now - w.idle_since >= self.idle_exit_s or w.checks >= self.checks_per_worker)]
            self._workers = [w for w in self._workers if w not in retiring]
            for key in [k for k, e in self._entries.items()
                        if e.state.phase is Phase.DONE and now - e.done_at >= UNCLAIMED_S]:
                _remove_workdir(self._entries.pop(key).task)
            quiet = self._queue.running_count == 0 and self._queue.waiting_count == 0
            trim = (self._trim_due and quiet) or (bool(retiring) and not self._workers)
            self._trim_due = self._trim_due and not trim
        for worker in retiring:
            self._stop_worker(worker)
        if trim:
            trim_heap()  # the last check ended, or the last worker went: hand back what the web process freed

    def _next_deadline(self) -> float | None:
        """Seconds until the next idle worker should exit or outcome expire; None: sleep until woken."""
        deadlines = [w.idle_since + self.idle_exit_s for w in self._workers if w.key is None]
        deadlines += [e.done_at + UNCLAIMED_S for e in self._entries.values() if e.state.phase is Phase.DONE]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic()) + 0.05

    # --- helpers (called with the lock held) ---------------------------------------------------------------

    def _stop_check(self, key: str, entry: _Entry, message: str) -> None:
        if self._queue.remove(key):  # still waiting: nothing ran
            self._finish(key, entry, CheckOutcome.failed(message))
            return
        self._finish(key, entry, CheckOutcome.failed(message))
        worker = next((w for w in self._workers if w.key == key), None)
        if worker is not None:
            self._workers.remove(worker)
            self._doomed.append(worker)
            _kill_group(worker)
        _remove_workdir(entry.task)

    def _finish(self, key: str, entry: _Entry, outcome: CheckOutcome) -> None:
        self._queue.finish(key)
        self._trim_due = True
        entry.state = CheckState(Phase.DONE, outcome=outcome)
        entry.done_at = time.monotonic()

    def _stop_worker(self, worker: _Worker) -> None:
        with contextlib.suppress(OSError):
            worker.conn.send(None)
        worker.process.join(timeout=STOP_WAIT_S)
        if worker.process.is_alive():
            _kill_group(worker)
            worker.process.join(timeout=STOP_WAIT_S)
        worker.conn.close()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")


class _WorkerPopen(popen_forkserver.Popen):
    """Starts a worker from the forkserver without the web process's main script.

    multiprocessing tells every child to run the parent's ``__main__`` again; under Streamlit that is
    the app's page script (a Streamlit run puts it there), which must never run in a worker. The rest is
    :class:`multiprocessing.popen_forkserver.Popen`'s own launch.
    """

    def _launch(self, process_obj: BaseProcess) -> None:
        prep_data = spawn.get_preparation_data(process_obj.name)
        for key in ("init_main_from_name", "init_main_from_path"):
            prep_data.pop(key, None)
        buf = io.BytesIO()
        set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)
        parent_w = os.dup(w)  # the child's sign that the parent is alive, as the stdlib keeps it
        self.finalizer = util.Finalize(self, util.close_fds, (parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class _WorkerProcess(ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: BaseProcess) -> _WorkerPopen:
        return _WorkerPopen(process_obj)


def _kill_group(worker: _Worker) -> None:
    """SIGKILL the worker's process group (it leads one: the ffmpeg it started is in it)."""
    pid = worker.process.pid
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _remove_workdir(task: Task) -> None:
    shutil.rmtree(task.workdir, ignore_errors=True)

