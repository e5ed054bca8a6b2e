"""Following work on the check workers (:class:`lib.checks.CheckPool`): a card's progress bars, kept up to date.

The check itself runs in a worker process; the web process only polls the pool,
a few times a second, and sleeps in between. Every Streamlit call is a point where
a click interrupts the script, so the page stays responsive while it follows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from lib.checks import CheckOutcome, CheckPool, CheckState, Phase, Task
from lib.pipeline import Progress

POLL_S = 0.5
"""How often the page asks the pool how far the checks got."""
KEEPALIVE_S = 1.0
"""With nothing new to show for this long, a bar is drawn again anyway: a click is only noticed when the
script draws something."""
WAITING = "Waiting for a free check slot ({place} in line)"
"""A waiting check's bar text."""


@dataclass
class CheckBars:
    """One check's bars on the page."""

    key: str
    check_bar: DeltaGenerator
    pulse_bar: DeltaGenerator
    shown: tuple = field(default_factory=tuple)
    """What the bars show now (so an unchanged state is not sent again)."""


def render_bars(key: str, state: CheckState | None) -> CheckBars:
    """Draw the bars of the check under ``key`` as it stands."""
    bars = CheckBars(key, st.progress(0.0, text="Checking the file"),
                     st.progress(0.0, text="Quick-look pulse: waiting"))
    show(bars, state)
    return bars


def show(bars: CheckBars, state: CheckState | None, *, force: bool = False) -> bool:
    """Update the bars to ``state``; True if anything was drawn."""
    view = _view(state)
    if view == bars.shown and not force:
        return False
    (check_fraction, check_text), (pulse_fraction, pulse_text) = view
    bars.check_bar.progress(check_fraction, text=check_text)
    bars.pulse_bar.progress(pulse_fraction, text=pulse_text)
    bars.shown = view
    return True


def follow(pool: CheckPool, bars: list[CheckBars]) -> None:
    """Keep the bars up to date until one of their checks ends, then rerun the page to show its outcome."""
    if bars:
        waiting, running, _workers = pool.counts()
        st.caption(f"The server checks {pool.limits.total} recordings at a time ({pool.limits.per_user} per "
                   f"researcher); {running} running, {waiting} waiting now.")
    last_drawn = time.monotonic()
    while bars:
        drawn = False
        for item in bars:
            state = pool.state(item.key)
            if state is None or state.phase is Phase.DONE:
                st.rerun()
            drawn = show(item, state) or drawn
        if not drawn and time.monotonic() - last_drawn >= KEEPALIVE_S:
            drawn = show(bars[0], pool.state(bars[0].key), force=True)
        if drawn:
            last_drawn = time.monotonic()
        time.sleep(POLL_S)


def run_and_wait(pool: CheckPool, key: str, owner: str, task: Task) -> CheckOutcome:
    """Run one task on the workers while its bars follow it here; leaving the page (a click, a rerun)
    cancels it, as it stopped the work when it ran in the page."""
    pool.submit(key, owner, task)
    bars = render_bars(key, pool.state(key))
    try:
        while (state := pool.state(key)) is not None and state.phase is not Phase.DONE:
            show(bars, state, force=True)
            time.sleep(POLL_S)
    except BaseException:  # Streamlit's rerun or stop
        pool.forget(key)
        raise
    outcome = pool.take(key)
    assert outcome is not None
    return outcome


def _view(state: CheckState | None) -> tuple[tuple[float, str], tuple[float, str]]:
    if state is None or state.phase is Phase.WAITING:
        place = f"#{state.position}" if state is not None and state.position else "next"
        return (0.0, WAITING.format(place=place)), (0.0, "Quick-look pulse: waiting")
    check: Progress | None = state.progress
    pulse: Progress | None = state.pulse
    check_view = (check.fraction, check.describe()) if check else (0.0, "Checking the file")
    pulse_view = (pulse.fraction, f"Quick-look pulse: {pulse.fraction:.0%}") if pulse else (
        0.0, "Quick-look pulse: waiting")
    if state.phase is Phase.DONE:
        return (1.0, "Checked"), (1.0, "Quick-look pulse: done")
    return check_view, pulse_view
