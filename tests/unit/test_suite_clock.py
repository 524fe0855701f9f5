"""The suite's clock (tests/clock.py) moves with real time unless a test freezes it."""

from __future__ import annotations

import time
from datetime import timedelta

from tests.clock import DEFAULT_INSTANT, PinnedClock


def test_a_frozen_clock_moves_only_when_told_and_reset_brings_real_time_back() -> None:
    clock = PinnedClock(DEFAULT_INSTANT)
    clock.freeze()
    frozen = clock.now()
    time.sleep(0.01)
    assert clock.now() == frozen
    clock.advance(timedelta(seconds=1.5))
    assert clock.now() == frozen + timedelta(seconds=1.5)
    clock.set(DEFAULT_INSTANT)
    time.sleep(0.01)
    assert clock.now() == DEFAULT_INSTANT  # set keeps it frozen
    clock.reset()
    before = clock.now()
    time.sleep(0.01)
    assert clock.now() > before
