"""lib.checks: the fair queue, and the pool of check workers (cancel, a worker that dies, idle exit, order)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lib.checks import CheckLimits, CheckOutcome, CheckPool, CheckState, CheckTask, FairQueue, Phase, Verdict
from lib.checks import worker as worker_module
from lib.pipeline import Progress, Step
from tests.support import videos

MIB = 1024 * 1024


# --- the fair queue ------------------------------------------------------------------------------------------


def test_a_folder_of_fifty_does_not_starve_another_researchers_single_file() -> None:
    queue = FairQueue(CheckLimits(total=1, per_user=1))
    for n in range(50):
        queue.add(f"a{n}", "alice")
    queue.add("b0", "bob")
    assert queue.start_next() == ("a0", "alice")
    assert queue.position("b0") == 1 and queue.position("a1") == 2  # bob's file is next, not 50th
    assert queue.start_next() is None  # the one slot is taken
    queue.finish("a0")
    assert queue.start_next() == ("b0", "bob")
    queue.finish("b0")
    assert queue.start_next() == ("a1", "alice")


def test_the_per_user_cap_leaves_slots_to_others_and_the_total_cap_holds() -> None:
    queue = FairQueue(CheckLimits(total=2, per_user=1))
    for key in ("a0", "a1", "a2"):
        queue.add(key, "alice")
    assert queue.start_next() == ("a0", "alice")
    assert queue.start_next() is None  # alice is at her cap; the second slot waits for someone else
    queue.add("b0", "bob")
    queue.add("c0", "carol")
    assert queue.start_next() == ("b0", "bob")
    assert queue.start_next() is None  # both slots taken
    assert queue.running_count == 2 and queue.waiting_count == 3
    assert queue.position("c0") == 1  # carol is below her cap: she goes before alice's next
    queue.finish("a0")
    assert queue.start_next() == ("c0", "carol")


def test_removing_a_waiting_check_and_refusing_a_key_twice() -> None:
    queue = FairQueue(CheckLimits(total=1, per_user=1))
    queue.add("a0", "alice")
    with pytest.raises(ValueError, match="already"):
        queue.add("a0", "alice")
    assert queue.remove("a0") and not queue.remove("a0")
    assert queue.start_next() is None and queue.waiting_count == 0
    with pytest.raises(ValueError):
        CheckLimits(total=0, per_user=1)


# --- the pool, with workers forked from this process so their task can be a test's function ---------------


Fake = Callable[[CheckTask, Callable[[Progress], None]], CheckOutcome]


def _fake_run(task: CheckTask, progress: Callable[[Progress], None]) -> CheckOutcome:
    """What a fake check does is in its name: ``slow`` reports and sleeps, ``die`` kills its worker."""
    task.workdir.mkdir(parents=True, exist_ok=True)
    with (task.workdir.parent / "order.log").open("a") as log:
        log.write(task.name + "\n")
    (task.workdir.parent / f"{task.name}.scheduler").write_text(str(os.sched_getscheduler(0)))
    progress(Progress(Step.VALIDATE, 1, 2))
    if task.name.startswith("slow"):
        time.sleep(60)
    if task.name.startswith("die"):
        os.kill(os.getpid(), signal.SIGKILL)
    return CheckOutcome(Verdict.PASSED)


@pytest.fixture
def forked_pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., CheckPool]]:
    monkeypatch.setattr(worker_module, "run_task", _fake_run)
    pools: list[CheckPool] = []

    def make(total: int = 2, per_user: int = 1, idle_exit_s: float = 30.0) -> CheckPool:
        pool = CheckPool(CheckLimits(total=total, per_user=per_user), idle_exit_s=idle_exit_s,
                         context=multiprocessing.get_context("fork"))
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


def _task(tmp_path: Path, name: str) -> CheckTask:
    return CheckTask(name, tmp_path / name, max_bytes=MIB, path=tmp_path / "unused.avi")


def _wait(pool: CheckPool, key: str, until: Callable[[CheckState], bool], timeout: float = 30.0) -> CheckState:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = pool.state(key)
        if state is not None and until(state):
            return state
        time.sleep(0.02)
    raise AssertionError(f"{key} did not get there: {pool.state(key)}")


def _done(state: CheckState) -> bool:
    return state.phase is Phase.DONE


def test_progress_streams_back_and_cancel_stops_the_worker_and_keeps_nothing(forked_pool, tmp_path) -> None:
    pool = forked_pool()
    pool.submit("k", "alice", _task(tmp_path, "slow.avi"))
    running = _wait(pool, "k", lambda s: s.progress is not None)
    assert running.phase is Phase.RUNNING and running.progress.step is Step.VALIDATE
    assert (tmp_path / "slow.avi").is_dir()
    pool.cancel("k")
    state = pool.state("k")
    assert state.phase is Phase.DONE and state.outcome.verdict is Verdict.FAILED
    assert "You cancelled the check of slow.avi" in state.outcome.message
    assert not (tmp_path / "slow.avi").exists()  # its workdir went
    deadline = time.monotonic() + 10
    while pool.counts()[2] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.counts() == (0, 0, 0)  # the worker was killed, not left running the check
    assert pool.take("k").verdict is Verdict.FAILED and pool.state("k") is None  # handed over once


def test_checks_get_only_the_cpu_time_the_web_process_leaves(forked_pool, tmp_path) -> None:
    """Issue 23: a worker (and the FFmpeg it starts) is in Linux's idle scheduling class."""
    pool = forked_pool()
    pool.submit("k", "alice", _task(tmp_path, "quick.avi"))
    _wait(pool, "k", _done)
    assert (tmp_path / "quick.avi.scheduler").read_text() == str(os.SCHED_IDLE)
    assert os.sched_getscheduler(0) != os.SCHED_IDLE  # the web process (here: the test) is not


def test_a_worker_that_dies_mid_check_fails_it_with_a_clear_message(forked_pool, tmp_path) -> None:
    pool = forked_pool()
    pool.submit("k", "alice", _task(tmp_path, "die.avi"))
    outcome = _wait(pool, "k", _done).outcome
    assert outcome.verdict is Verdict.FAILED
    assert "ended unexpectedly" in outcome.message and "Nothing is lost" in outcome.message
    assert "Traceback" not in outcome.message
    pool.submit("k", "alice", _task(tmp_path, "again.avi"))  # checking it again works: a new worker starts
    assert _wait(pool, "k", _done).outcome.verdict is Verdict.PASSED


def test_idle_workers_exit_so_their_memory_returns(forked_pool, tmp_path) -> None:
    pool = forked_pool(idle_exit_s=0.5)
    pool.submit("k", "alice", _task(tmp_path, "quick.avi"))
    _wait(pool, "k", _done)
    assert pool.counts()[2] == 1
    deadline = time.monotonic() + 10
    while pool.counts()[2] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.counts()[2] == 0


def test_the_pool_starts_checks_in_fair_order_and_shows_waiting_positions(forked_pool, tmp_path) -> None:
    pool = forked_pool(total=1, per_user=1)
    pool.submit("a0", "alice", _task(tmp_path, "slow-a0.avi"))
    _wait(pool, "a0", lambda s: s.progress is not None)  # it runs (and has written its name)
    for key in ("a1", "a2"):
        pool.submit(key, "alice", _task(tmp_path, f"{key}.avi"))
    pool.submit("b0", "bob", _task(tmp_path, "b0.avi"))
    assert pool.state("b0").position == 1 and pool.state("a1").position == 2 and pool.state("a2").position == 3
    pool.cancel("a0")
    for key in ("b0", "a1", "a2"):
        _wait(pool, key, _done)
    assert (tmp_path / "order.log").read_text().split() == ["slow-a0.avi", "b0.avi", "a1.avi", "a2.avi"]


# --- a real check on a real worker (forkserver, the app's way) --------------------------------------------


def test_a_real_check_runs_in_a_forkserver_worker(tmp_path) -> None:
    clip = videos.opencv_video(tmp_path, "mjpg", frames=30)
    if clip is None:
        pytest.skip("OpenCV cannot write MJPG here")
    pool = CheckPool(CheckLimits(total=1, per_user=1), idle_exit_s=5)
    try:
        pool.submit("k", "alice", CheckTask("clip.avi", tmp_path / "check", max_bytes=100 * MIB, path=clip))
        outcome = _wait(pool, "k", _done, timeout=120).outcome
        assert outcome.verdict is Verdict.PASSED, outcome.message
        prepared = outcome.prepared
        assert prepared.video.frame_count == 30 and prepared.thumbnail.exists()
        assert prepared.workdir == tmp_path / "check"
        pool.submit("t", "alice", CheckTask("notes.avi", tmp_path / "t", max_bytes=100 * MIB,
                                            path=videos.text_file(tmp_path / "notes.avi")))
        refused = _wait(pool, "t", _done, timeout=60).outcome
        assert refused.verdict is Verdict.REFUSED and refused.message
    finally:
        pool.close()
