"""Bars in seconds, by time signatures and tempo maps."""

import numpy as np
import pytest

from melodia.midi import TEMPO_DTYPE, TIME_SIGNATURE_DTYPE, Score, read_midi
from melodia.midi.bars import bar_span, bar_starts, quarters_at, seconds_at
from tests.conftest import DATA


def test_three_four_then_six_eight_at_sixty():
    ts = np.array([(0.0, 3, 4), (6.0, 6, 8)], dtype=TIME_SIGNATURE_DTYPE)
    score = Score(tempos=np.array([(0.0, 60.0)], dtype=TEMPO_DTYPE), time_signatures=ts)
    assert bar_starts(score, 12.0).tolist() == [0.0, 3.0, 6.0, 9.0, 12.0, 15.0]


def test_tempo_change_moves_bar_lines():
    tempos = np.array([(0.0, 120.0), (4.0, 60.0)], dtype=TEMPO_DTYPE)  # 2 bars, then slower
    score = Score(tempos=tempos)
    assert bar_starts(score, 12.0).tolist() == [0.0, 2.0, 4.0, 8.0, 12.0, 16.0]
    assert seconds_at(quarters_at(np.array([5.5]), score), score)[0] == pytest.approx(5.5)


def test_bar_span_of_a_real_file():
    score = read_midi(DATA / "freedoom" / "doom1_D_E1M1.mid")  # 4/4 at 186 qpm
    start, end = bar_span(score, "5-8")
    assert start == pytest.approx(4 * 4 * 60 / 186, abs=1e-3)
    assert end - start == pytest.approx(4 * 4 * 60 / 186, abs=1e-3)


@pytest.mark.parametrize("bad", ["8-5", "0-2", "five", "5-"])
def test_bad_spans_are_one_line(bad):
    with pytest.raises(ValueError, match="bars"):
        bar_span(Score(), bad)
