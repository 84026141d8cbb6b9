"""The bridge between an engine job on a worker thread and the GUI thread."""

from __future__ import annotations

import threading
import time

import pytest

from studio.core.errors import ConfigError
from studio.engine.control import Cancelled
from studio.engine.events import Failed, Finished, Log
from studio.gui.job_bridge import JobBridge


def counting_job(control, n=10_000, delay=0.0):
    """A job shaped like the engine's: one event per step, a control checkpoint between
    steps, ``Finished`` also after a cancel."""
    step = 0
    try:
        for step in range(n):
            control.checkpoint()
            if delay:
                time.sleep(delay)
            yield Log("info", str(step))
    except Cancelled:
        yield Finished(step, None, {"cancelled": True})
        return
    yield Finished(n, None, {})


def collect(bridge):
    seen = []
    bridge.events.connect(seen.extend)
    return seen


def test_events_arrive_in_order_batched_and_the_end_is_reported(qtbot):
    bridge = JobBridge(interval_ms=10)
    seen = collect(bridge)
    batches = []
    bridge.events.connect(lambda b: batches.append(len(b)))
    with qtbot.waitSignal(bridge.ended, timeout=10_000) as ended:
        bridge.start(lambda control: counting_job(control, n=5000))
    assert isinstance(ended.args[0], Finished) and ended.args[0].step == 5000
    steps = [int(e.message) for e in seen if isinstance(e, Log)]
    assert steps == list(range(5000))
    assert len(batches) < 5000  # coalesced: far fewer emits than events
    assert not bridge.running


def test_pause_stops_steps_resume_continues_cancel_finishes(qtbot):
    bridge = JobBridge(interval_ms=10)
    seen = collect(bridge)
    bridge.start(lambda control: counting_job(control, n=100_000, delay=0.0005))
    qtbot.waitUntil(lambda: len(seen) > 20, timeout=5000)
    paused = []
    bridge.paused_changed.connect(paused.append)
    bridge.pause()
    qtbot.wait(100)  # let the step in flight land
    count = len(seen)
    qtbot.wait(300)
    assert len(seen) == count and bridge.paused and paused == [True]
    bridge.resume()
    qtbot.waitUntil(lambda: len(seen) > count + 20, timeout=5000)
    with qtbot.waitSignal(bridge.ended, timeout=5000) as ended:
        bridge.cancel()
    assert ended.args[0].result == {"cancelled": True}


def test_cancel_while_paused_wakes_the_job(qtbot):
    bridge = JobBridge(interval_ms=10)
    bridge.start(lambda control: counting_job(control, n=100_000, delay=0.001))
    bridge.pause()
    assert bridge.stop_and_wait(timeout=5)
    assert isinstance(bridge.last_event, Finished) and bridge.last_event.result["cancelled"]


def test_a_crashing_job_becomes_failed_and_the_bridge_can_start_again(qtbot):
    def broken(control):
        yield Log("info", "about to fail")
        raise RuntimeError("the worker broke")

    bridge = JobBridge(interval_ms=10)
    with qtbot.waitSignal(bridge.ended, timeout=5000) as ended:
        bridge.start(broken)
    assert isinstance(ended.args[0], Failed) and "the worker broke" in ended.args[0].message
    with qtbot.waitSignal(bridge.ended, timeout=5000) as ended:
        bridge.start(lambda control: counting_job(control, n=3))
    assert isinstance(ended.args[0], Finished)


def test_bad_input_raises_on_the_gui_thread_before_any_thread_starts(qtbot):
    def factory(control):
        raise ConfigError("[train] lr = -1: must be > 0")

    bridge = JobBridge()
    before = threading.active_count()
    with pytest.raises(ConfigError, match="lr"):
        bridge.start(factory)
    assert not bridge.running and threading.active_count() == before


def test_one_job_at_a_time(qtbot):
    bridge = JobBridge(interval_ms=10)
    bridge.start(lambda control: counting_job(control, n=100_000, delay=0.001))
    with pytest.raises(RuntimeError, match="already running"):
        bridge.start(lambda control: counting_job(control, n=3))
    assert bridge.stop_and_wait(timeout=5)
