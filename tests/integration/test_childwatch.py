"""lib.childwatch with real processes: a watched command stops, and its folder goes, when its parent ends,
whether the parent exits, closes the pipe or is killed with SIGKILL (no chance to clean up)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from lib import childwatch
from tests.support.app_server import REPO

GONE_WITHIN_S = 15.0

PARENT = """
import sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from lib.childwatch import spawn_watched
watcher = spawn_watched(["sleep", "600"], cleanup=[Path({folder!r})])
print(watcher.pid, flush=True)
time.sleep(600)
"""


def wait_gone(proc: psutil.Process, folder: Path) -> None:
    deadline = time.monotonic() + GONE_WITHIN_S
    while (proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE) or folder.exists():
        assert time.monotonic() < deadline, f"left behind: {proc.pid} ({proc.is_running()}), {folder.exists()}"
        time.sleep(0.1)


def the_command(watcher_pid: int) -> psutil.Process:
    deadline = time.monotonic() + GONE_WITHIN_S
    while not (children := psutil.Process(watcher_pid).children()):
        assert time.monotonic() < deadline, "the watcher never started its command"
        time.sleep(0.05)
    [command] = children
    return command


def test_the_command_stops_and_its_folder_goes_when_the_parent_is_killed(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(repo=str(REPO), folder=str(folder))],
                              stdout=subprocess.PIPE, text=True)
    try:
        command = the_command(int(parent.stdout.readline()))
        assert command.name() == "sleep"
        os.kill(parent.pid, signal.SIGKILL)
        wait_gone(command, folder)
    finally:
        parent.kill()
        parent.wait()


def test_stopping_the_watcher_stops_the_command(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    watcher = childwatch.spawn_watched(["sleep", "600"], cleanup=[folder])
    command = the_command(watcher.pid)
    watcher.terminate()
    wait_gone(command, folder)
    assert watcher.wait(GONE_WITHIN_S) != 0  # stopped, not finished


def test_a_command_that_ends_by_itself_ends_the_watcher_with_its_code(tmp_path: Path) -> None:
    watcher = childwatch.spawn_watched([sys.executable, "-c", "raise SystemExit(3)"], cleanup=[tmp_path / "x"])
    assert watcher.wait(GONE_WITHIN_S) == 3


def test_a_burst_of_stop_signals_still_stops_the_command(tmp_path: Path) -> None:
    """The way an app usually dies: its pipe closes and signals arrive together (a killed parent). Whatever order
    they come in, the watcher stops its command. (The watcher's handlers once took a lock its main thread could
    hold, and hung; that race is too narrow to hit on demand, so this checks the outcome many times over.)"""
    for attempt in range(8):
        folder = tmp_path / f"data{attempt}"
        folder.mkdir()
        watcher = childwatch.spawn_watched(["sleep", "600"], cleanup=[folder])
        command = the_command(watcher.pid)
        assert watcher.stdin is not None
        watcher.stdin.close()
        for _ in range(30):
            for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(watcher.pid, sig)
        wait_gone(command, folder)
        assert watcher.wait(GONE_WITHIN_S) is not None
