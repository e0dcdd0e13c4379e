import time

import pytest

from melodia.util.timelimit import TimeLimitExceeded, time_limit


def spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_limit_stops_a_runaway_block_and_lets_a_quick_one_finish():
    with time_limit(1.0):
        spin(0.01)
    start = time.monotonic()
    with pytest.raises(TimeLimitExceeded) as info:
        with time_limit(0.05) as limit:
            spin(5)
    assert info.value.limit is limit and time.monotonic() - start < 1


def test_nested_limits_name_whose_time_ran_out():
    with pytest.raises(TimeLimitExceeded) as info:
        with time_limit(0.05) as outer:
            with time_limit(10):
                spin(5)
    assert info.value.limit is outer
    with time_limit(5) as outer:
        with pytest.raises(TimeLimitExceeded) as info:
            with time_limit(0.05) as inner:
                spin(5)
        assert info.value.limit is inner
        spin(0.1)  # the outer limit is still armed, and has time left


def test_no_limit():
    with time_limit(None):
        spin(0.01)
