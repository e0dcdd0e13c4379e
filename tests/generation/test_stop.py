"""A generation stopped early keeps what it made: under ``keep_partial`` a stop (the studio's
cancel or time limit, or Ctrl-C) returns the events so far, which are the start of the same
uninterrupted piece; ``melodia generate`` writes them and says so; outside it a stop raises."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

from melodia.cli import main
from melodia.generation.config import GenerateConfig
from melodia.generation.decoding import WATCH_EVERY, Stopped, keep_partial, watched
from melodia.generation.generator import generate_ids

pytestmark = pytest.mark.usefixtures("one_thread")


def _stop_at(events: int, stop: BaseException):
    def report(done: int, seconds: float) -> None:
        if done >= events:
            raise stop
    return report


@pytest.mark.parametrize("stop", [Stopped("cancelled"), KeyboardInterrupt()])
def test_a_stopped_generation_keeps_the_start_of_the_same_piece(stop):
    config = GenerateConfig(seconds=20, seed=3)
    whole = generate_ids("piano", config).pieces[0]
    with keep_partial() as stops, watched(_stop_at(3 * WATCH_EVERY, stop)):
        result = generate_ids("piano", config)
    part = result.pieces[0]
    assert stops == [stop]
    assert len(part) - result.primer_events == 3 * WATCH_EVERY  # the steps taken whole
    assert len(part) < len(whole)
    np.testing.assert_array_equal(part, whole[: len(part)])


def test_outside_keep_partial_a_stop_still_raises():
    with pytest.raises(Stopped), watched(_stop_at(WATCH_EVERY, Stopped("cancelled"))):
        generate_ids("piano", GenerateConfig(seconds=20, seed=3))


def test_generate_writes_what_was_made_on_ctrl_c(tmp_path, capsys):
    out = tmp_path / "cut.mid"
    with watched(_stop_at(4 * WATCH_EVERY, KeyboardInterrupt())):
        code = main(["generate", "--seconds", "60", "--seed", "2", "-o", str(out),
                     "--audio", str(tmp_path / "cut.wav")])
    err = capsys.readouterr().err
    assert code == 130 and "stopped early (interrupted)" in err and "Traceback" not in err
    midi = pretty_midi.PrettyMIDI(str(out))
    assert 0 < midi.get_end_time() < 60 and midi.instruments[0].notes
    assert not (tmp_path / "cut.wav").exists()  # Ctrl-C: no minutes of rendering after it
