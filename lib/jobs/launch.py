"""Starting a driver from the app without ever blocking a page: ``python -m lib.jobs drain`` in a background
subprocess, one at a time per app process, at low priority, dying with the app.

A plain subprocess, like the demo's sample (lib.sample): under Streamlit ``__main__`` is the app script,
which a ``multiprocessing`` child would run again. It is started from a thread of its own that waits for it,
because the kernel's parent-death signal (:func:`lib.childwatch.die_with_parent`) fires when the *thread*
that started the child ends, and a Streamlit script thread ends right after its run. If the app dies, the
driver goes with it; its jobs keep their rows and the next driver resumes them.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
from pathlib import Path

from lib.childwatch import die_with_parent
from lib.jobs.backends import DriverTarget

log = logging.getLogger(__name__)

DRIVER_NICENESS = 10
"""The driver (and the local Ray it starts, whose workers inherit it) yields the CPU to the web process."""
START_TIMEOUT_S = 10.0
REPO_ROOT = Path(__file__).resolve().parents[2]

_lock = threading.Lock()
_driver: subprocess.Popen | None = None


def driver_running() -> bool:
    """Whether this app process has a driver running now."""
    return _driver is not None and _driver.poll() is None


def ensure_driver(target: DriverTarget) -> None:
    """Start a driver unless one of this process's is running (it takes every unfinished job in turn)."""
    with _lock:
        if driver_running():
            return
        started = threading.Event()
        threading.Thread(target=_run_driver, args=(target, started), daemon=True, name="pulsevault-job-driver").start()
        started.wait(START_TIMEOUT_S)


def resume_unfinished(target: DriverTarget) -> bool:
    """At the app's start: a driver for the jobs an earlier app process left unfinished (it stopped or died
    mid-job); True if there were any. The Jobs page does the same whenever it lists a driverless job."""
    if not target.unfinished():
        return False
    ensure_driver(target)
    return True


def _run_driver(target: DriverTarget, started: threading.Event) -> None:
    global _driver
    try:
        child = subprocess.Popen([sys.executable, "-m", "lib.jobs", "drain"], cwd=REPO_ROOT, stdin=subprocess.PIPE,
                                 preexec_fn=die_with_parent(signal.SIGTERM))
        os.setpriority(os.PRIO_PROCESS, child.pid, DRIVER_NICENESS)
        _driver = child
    except OSError:
        log.exception("the job driver could not be started")
        return
    finally:
        started.set()
    child.communicate(pickle.dumps(target))
    if child.returncode != 0:
        log.warning("the job driver ended with exit code %s; unfinished jobs resume with the next one",
                    child.returncode)
