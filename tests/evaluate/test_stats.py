"""Per-excerpt statistics, each on a case whose value is known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from melodia.evaluate import stats
from melodia.midi import make_notes


def notes_of(rows: list[tuple[float, float, int, int]]) -> np.ndarray:
    start, end, pitch, velocity = zip(*rows)
    return make_notes(start, end, pitch, velocity)


def test_note_density_counts_onsets_per_second():
    notes = notes_of([(i * 0.5, i * 0.5 + 0.2, 60, 80) for i in range(10)])
    assert stats.note_density(notes, 5.0) == 2.0


def test_piano_roll_samples_frame_centres():
    # frames of 50 ms sampled at 25 ms, 75 ms, ...: a 20 ms note at 0.03-0.05 s is missed,
    # one from 0.0 to 0.1 s sounds at 0.025 and 0.075 (two frames)
    roll = stats.piano_roll(notes_of([(0.0, 0.1, 60, 80), (0.03, 0.05, 62, 80)]), 0.2)
    assert roll.shape == (4, 128)
    assert roll[:, 60].tolist() == [True, True, False, False]
    assert not roll[:, 62].any()


def test_polyphony_and_silence_over_frames():
    # 2 s: C4 for 1 s, E4 for the first 0.5 s, then silence -> 20 sounding frames of 40
    notes = notes_of([(0.0, 1.0, 60, 80), (0.0, 0.5, 64, 80)])
    roll = stats.piano_roll(notes, 2.0)
    assert stats.polyphony(roll) == pytest.approx(1.5)  # 10 frames of 2 voices, 10 of 1
    assert stats.silence_share(roll) == pytest.approx(0.5)


def test_polyphony_counts_a_doubled_pitch_once():
    roll = stats.piano_roll(notes_of([(0.0, 1.0, 60, 80), (0.2, 0.6, 60, 90)]), 1.0)
    assert stats.polyphony(roll) == 1.0


def test_pitch_length_and_velocity_stats():
    notes = notes_of([(0.0, 0.5, 60, 60), (0.0, 1.0, 64, 80), (1.0, 4.0, 67, 60),
                      (2.0, 7.0, 72, 80)])
    p = stats.pitch_stats(notes)
    assert p["pitch_mean"] == pytest.approx(65.75)
    assert p["pitch_std"] == pytest.approx(np.std([60, 64, 67, 72]))
    assert p["pitch_range"] == 12
    lengths = stats.length_stats(notes)  # 0.5, 1, 3, 5 s
    assert lengths == pytest.approx({"length_median": 2.0, "long_2s": 0.5, "long_4s": 0.25})
    assert stats.velocity_stats(notes) == pytest.approx({"velocity_mean": 70.0,
                                                         "velocity_std": 10.0})


def test_inter_onset_interval_merges_chord_onsets():
    # onsets 0 (a chord, one note 2 ms late), 0.5, 1.5 -> gaps 0.5 and 1.0
    notes = notes_of([(0.0, 0.4, 60, 80), (0.002, 0.4, 64, 80), (0.5, 1.0, 62, 80),
                      (1.5, 2.0, 65, 80)])
    assert stats.onset_times(notes).tolist() == [0.0, 0.5, 1.5]
    assert stats.inter_onset_interval(notes) == pytest.approx(0.75)
    assert math.isnan(stats.inter_onset_interval(notes[:1]))


def test_pitch_class_entropy_known_values():
    chromatic = notes_of([(0.1 * i, 0.1 * i + 0.1, 60 + i, 80) for i in range(12)])
    assert stats.pitch_class_entropy(chromatic) == pytest.approx(math.log2(12))
    octaves = notes_of([(0.0, 1.0, p, 80) for p in (36, 48, 60, 72)])
    assert stats.pitch_class_entropy(octaves) == 0.0
    two = notes_of([(0.0, 1.0, 60, 80), (0.0, 1.0, 67, 80)])
    assert stats.pitch_class_entropy(two) == pytest.approx(1.0)


def test_semitone_clash_needs_adjacent_keys():
    cluster = notes_of([(0.0, 2.0, 60 + i, 80) for i in range(12)])
    assert stats.semitone_clash(stats.piano_roll(cluster, 2.0)) == 1.0
    triad = notes_of([(0.0, 2.0, p, 80) for p in (60, 64, 67)])
    assert stats.semitone_clash(stats.piano_roll(triad, 2.0)) == 0.0
    minor_ninth = notes_of([(0.0, 2.0, 60, 80), (0.0, 2.0, 73, 80)])
    assert stats.semitone_clash(stats.piano_roll(minor_ninth, 2.0)) == 0.0
    # C4 for 2 s, C#4 for the first second: half the sounding frames clash
    half = notes_of([(0.0, 2.0, 60, 80), (0.0, 1.0, 61, 80)])
    assert stats.semitone_clash(stats.piano_roll(half, 2.0)) == pytest.approx(0.5)


def test_recurring_share_counts_positions_of_repeated_ngrams():
    # 3-grams 123, 231, 312, 123: only 123 recurs, at 2 of 4 positions
    assert stats.recurring_share(np.array([1, 2, 3, 1, 2, 3]), 3) == 0.5
    assert stats.recurring_share(np.arange(10), 2) == 0.0
    assert math.isnan(stats.recurring_share(np.arange(3), 4))
    rows = np.array([[1, 0], [2, 0], [1, 0], [2, 0]])  # items may be rows (pitch-set masks)
    assert stats.recurring_share(rows, 2) == pytest.approx(2 / 3)


def test_repetition_of_a_repeated_scale_and_of_a_random_line():
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    repeated = notes_of([(0.25 * i, 0.25 * i + 0.2, scale[i % 8], 80) for i in range(64)])
    assert stats.melodic_repetition(repeated) > 0.95
    assert stats.chord_repetition(repeated) > 0.95
    rng = np.random.default_rng(0)
    random = notes_of([(0.25 * i, 0.25 * i + 0.2, int(p), 80)
                       for i, p in enumerate(rng.integers(40, 90, 64))])
    assert stats.melodic_repetition(random) < 0.1


def test_top_line_and_pitch_sets_follow_onsets():
    notes = notes_of([(0.0, 1.0, 60, 80), (0.0, 1.0, 67, 80), (1.0, 2.0, 62, 80),
                      (1.0, 2.0, 100, 80)])
    assert stats.top_line(notes).tolist() == [67, 100]
    masks = stats.onset_pitch_sets(notes)
    assert masks[0].tolist() == [1 << 60, 1 << 3]  # 67 = 64 + 3: bit 3 of the high word
    assert masks[1].tolist() == [1 << 62, 1 << 36]


def test_empty_excerpt_gives_nan_not_errors():
    empty = make_notes([], [], [], [])
    roll = stats.piano_roll(empty, 30.0)
    assert math.isnan(stats.polyphony(roll)) and math.isnan(stats.semitone_clash(roll))
    assert math.isnan(stats.pitch_stats(empty)["pitch_mean"])
    assert math.isnan(stats.pitch_class_entropy(empty))
    assert math.isnan(stats.melodic_repetition(empty))


# ------------------------------------------------------------------------------- 16th grid

TEMPO_120 = np.array([(0.0, 120.0)], dtype=[("time_s", "f8"), ("qpm", "f8")])


def test_grid_share_of_quantized_onsets_is_one():
    onsets = np.arange(64) * 0.125  # every 16th note at 120 qpm
    assert stats.grid_share(onsets, TEMPO_120) == 1.0
    assert stats.grid_share(onsets[::3], None) == 1.0  # no tempo map: MIDI's 120 qpm


def test_grid_share_counts_onsets_within_the_tolerance():
    assert stats.grid_share(np.arange(16) * 0.125 + 0.015, TEMPO_120) == 1.0
    assert stats.grid_share(np.arange(16) * 0.125 + 0.03, TEMPO_120) == 0.0
    assert stats.grid_share(np.arange(16) * 0.125 + 0.03, TEMPO_120, tolerance_s=0.04) == 1.0
    assert math.isnan(stats.grid_share(np.empty(0), TEMPO_120))


def test_grid_share_of_random_onsets_is_proportional_to_the_tolerance():
    onsets = np.random.default_rng(0).uniform(0.0, 600.0, 20000)
    # 2 x 20 ms out of every 125 ms
    assert stats.grid_share(onsets, TEMPO_120) == pytest.approx(0.32, abs=0.015)
    assert stats.grid_share(onsets, TEMPO_120, tolerance_s=0.01) == pytest.approx(0.16, abs=0.015)


def test_grid_follows_the_tempo_map():
    # 120 qpm for 2 s (16 sixteenths), then 60 qpm: 16ths every 0.25 s from 2.0 s on
    tempos = np.array([(0.0, 120.0), (2.0, 60.0)], dtype=TEMPO_120.dtype)
    on_grid = np.concatenate([np.arange(16) * 0.125, 2.0 + np.arange(8) * 0.25])
    assert stats.grid_share(on_grid, tempos) == 1.0
    off_after_change = 2.125 + np.arange(8) * 0.25  # on the 120 qpm grid, off the 60 qpm one
    assert stats.grid_share(off_after_change, tempos) == 0.0
    assert stats.grid_positions(np.array([1.0, 3.0]), tempos).tolist() == [8.0, 20.0]
    assert stats.grid_times(np.array([8.0, 20.0]), tempos).tolist() == [1.0, 3.0]


def test_the_first_tempo_holds_from_time_zero():
    tempos = np.array([(1.0, 60.0)], dtype=TEMPO_120.dtype)  # first change after the start
    assert stats.grid_share(np.arange(8) * 0.25, tempos) == 1.0
    assert stats.grid_share(np.arange(8) * 0.25 + 0.125, tempos) == 0.0
