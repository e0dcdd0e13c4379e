"""Key finding: the numpy fast path agrees with music21's own analysis on real chorales."""

from __future__ import annotations

import math

import numpy as np
import pytest

from melodia.evaluate import keys
from melodia.evaluate.music import score_notes
from melodia.midi import make_notes, read_midi
from tests.conftest import DATA

C_MAJOR_SCALE = [60, 62, 64, 65, 67, 69, 71, 72]
CHORALES = ["bach__bwv1.6.mxl.mid", "bach__bwv10.7.mxl.mid", "bach__bwv104.6.mxl.mid"]


def repeated_scale(seconds: float, step_s: float = 0.25) -> np.ndarray:
    n = int(seconds / step_s)
    return make_notes([i * step_s for i in range(n)], [i * step_s + step_s for i in range(n)],
                      [C_MAJOR_SCALE[i % 8] for i in range(n)], [80] * n)


def test_profiles_are_music21_weights_rotated_to_each_tonic():
    from music21.analysis.discrete import KrumhanslSchmuckler

    p = keys.key_profiles("krumhansl")
    assert p.shape == (24, 12)
    major = KrumhanslSchmuckler().getWeights("major")
    assert p[0].tolist() == major  # C major: tonic weight on C
    assert p[7, 7] == major[0] and p[7, 0] == major[5]  # G major: C is its fourth degree
    assert keys.key_name(0) == "C major" and keys.key_name(21) == "a minor"


def test_repeated_c_major_scale_is_stably_c_major():
    notes = repeated_scale(30.0)
    key, r = keys.estimate_key(notes, 30.0)
    assert key == 0 and r > 0.8
    ks = keys.key_stats(notes, 30.0, keys.key_profiles())
    assert ks.key == 0 and ks.stability == 1.0 and ks.changes_per_min == 0.0


def test_a_modulation_shows_as_key_changes():
    # 20 s in C major, then 10 s of the scale a tritone up (F# major)
    first, second = repeated_scale(20.0), repeated_scale(10.0)
    second["start_s"] += 20.0
    second["end_s"] += 20.0
    second["pitch"] += 6
    ks = keys.key_stats(np.concatenate([first, second]), 30.0, keys.key_profiles())
    assert ks.key == 0
    assert 0.5 < ks.stability < 1.0  # the windows after the modulation are in F#
    assert ks.changes_per_min >= 2.0  # at least one change in half a minute


def test_windows_cover_the_excerpt():
    starts, ends = keys.window_bounds(30.0, 5.0, 2.5)
    assert starts[0] == 0.0 and ends[-1] == 30.0 and len(starts) == 11
    assert keys.window_bounds(3.0, 5.0, 2.5)[1].tolist() == [3.0]


def test_pitch_class_time_weights_by_seconds_inside_the_window():
    notes = make_notes([0.0, 1.0], [2.0, 4.0], [60, 67], [80, 80])
    hist = keys.pitch_class_time(notes, np.array([0.0, 3.0]), np.array([2.0, 5.0]))
    assert hist[0, 0] == 2.0 and hist[0, 7] == 1.0
    assert hist[1, 0] == 0.0 and hist[1, 7] == 1.0


def test_flat_histogram_correlates_zero():
    r = keys.key_correlations(np.ones((1, 12)), keys.key_profiles())
    assert np.all(r == 0.0)


def test_no_notes_gives_nan():
    ks = keys.key_stats(make_notes([], [], [], []), 30.0, keys.key_profiles())
    assert math.isnan(ks.correlation) and math.isnan(ks.stability)


@pytest.mark.parametrize("name", CHORALES)
def test_fast_keys_agree_with_music21_analyze(name):
    from music21 import converter

    path = DATA / "chorales" / name
    stream = converter.parse(path)
    notes = score_notes(read_midi(path))
    for method, profile in (("krumhansl", "krumhansl"), ("key", "aarden")):
        expected = stream.analyze(method)  # 'key' is music21's default: Aarden-Essen
        key, r = keys.estimate_key(notes, profile=profile)
        assert keys.key_name(key).lower() == f"{expected.tonic.name} {expected.mode}".lower()
        assert r == pytest.approx(expected.correlationCoefficient, abs=1e-3)
