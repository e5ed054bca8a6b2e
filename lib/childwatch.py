"""A server the app starts dies with the app, however the app ends.

``spawn_watched`` starts ``python childwatch.py -- CMD...`` rather than CMD
itself. The watcher starts CMD and stops it as soon as the app is gone, by any
of three signals, so a crashed, killed or ``kill -9``-ed app leaves no server
behind:

- its stdin is a pipe whose only writer is the app: the kernel closes it when
  the app's process ends, however it ends, and the watcher reads EOF;
- its parent pid changes (the app died and the watcher was re-parented);
- on Linux, ``PR_SET_PDEATHSIG``: the kernel signals the watcher when the
  thread that started it ends, and signals CMD when the watcher ends. That is
  per *thread*, so ``spawn_watched`` starts the watcher from a thread of its
  own that lives exactly as long as the watcher does (Streamlit runs each
  script run on a thread that ends right afterwards).

When CMD has stopped, the watcher removes ``--cleanup`` folders (a demo's
throwaway data). This file runs as a script with ``python -I``: standard
library only, nothing from ``lib`` or site-packages, so it starts in tens of
milliseconds.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

STOP_GRACE_S = 5.0
"""How long CMD gets to stop on SIGTERM before it is killed."""
PARENT_POLL_S = 0.5
"""How often the watcher checks that the app is still there (its parent, its pipe, a stop signal)."""
_PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>
_LIBC: Any = None
if sys.platform == "linux":
    # Resolved now, before any fork: the child between fork and exec must not load libraries.
    _LIBC = ctypes.CDLL(None, use_errno=True)


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send ``sig`` to the child when its parent thread ends (Linux)."""
    if _LIBC is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect: nobody would signal us
            os.kill(os.getpid(), sig)

    return preexec


def spawn_watched(cmd: Sequence[str], *, log: IO[bytes] | None = None, cleanup: Sequence[Path] = (),
                  env: Mapping[str, str] | None = None, name: str = "pulsevault-child") -> subprocess.Popen:
    """Start ``cmd`` under a watcher that stops it (and removes ``cleanup``) once this process is gone.

    Returns the watcher's Popen: terminate it to stop ``cmd``. ``log`` receives both processes' output;
    ``env`` is added to this process's environment for both.
    """
    watcher = [sys.executable, "-I", str(Path(__file__).resolve()),
               *(arg for folder in cleanup for arg in ("--cleanup", str(folder))), "--", *cmd]
    started: queue.Queue[subprocess.Popen | BaseException] = queue.Queue(maxsize=1)

    def keep() -> None:  # lives as long as the watcher, so PDEATHSIG fires only when this process ends
        try:
            proc = subprocess.Popen(watcher, stdin=subprocess.PIPE, stdout=log, stderr=log,
                                    env={**os.environ, **(env or {})}, preexec_fn=die_with_parent(signal.SIGTERM))
        except BaseException as exc:
            started.put(exc)
            return
        started.put(proc)
        proc.wait()

    threading.Thread(target=keep, name=name, daemon=True).start()
    result = started.get()
    if isinstance(result, BaseException):
        raise result
    return result


# --- the watcher itself (python -I childwatch.py [--cleanup DIR] -- CMD...) ---------------------------------


class _Gone:
    """Set once the app is gone. A plain flag, not a ``threading.Event``: the signal handlers run on the main
    thread between two bytecodes, possibly inside ``Event.wait`` while it holds the Event's lock, and
    ``Event.set`` there waited for that lock forever (a killed app then left its server running)."""

    def __init__(self) -> None:
        self.flag = False

    def set(self, *_: object) -> None:
        self.flag = True


def _watch(cmd: list[str], cleanup: list[str]) -> int:
    parent = os.getppid()
    gone = _Gone()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, gone.set)
    threading.Thread(target=_wait_for_eof, args=(gone,), daemon=True).start()
    child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent(signal.SIGKILL))
    try:
        while child.poll() is None and not gone.flag and os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        return _stop(child)
    finally:
        for folder in cleanup:
            shutil.rmtree(folder, ignore_errors=True)


def _wait_for_eof(gone: _Gone) -> None:
    while sys.stdin.buffer.read(4096):
        pass
    gone.set()


def _stop(child: subprocess.Popen) -> int:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            child.kill()
    return child.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run CMD; stop it when the parent process is gone.")
    parser.add_argument("--cleanup", action="append", default=[], help="folder to remove once CMD has stopped")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARG...]")
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("no command given")
    return _watch(cmd, args.cleanup)


if __name__ == "__main__":
    code = main()
    # os._exit: the stdin reader thread is still blocked in read(), and a normal interpreter shutdown
    # aborts on its buffer lock. Nothing is left to flush; a signal's death is reported shell-style.
    os._exit(code if code >= 0 else 128 - code)
