"""Structure statistics on cases whose value is known: a looped riff returns, random notes do not;
and through real MIDI files written and read back, in `melodia evaluate`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from melodia import cli
from melodia.evaluate.band import BandEvalConfig, measure_band_file, stat_names
from melodia.evaluate.music import STAT_NAMES, excerpt_stats
from melodia.evaluate.structure import (STRUCTURE_NAMES, bar_return, chord_share, chroma_return,
                                        gap_bins, ioi_entropy, motif_recurrence, rhythm_recurrence,
                                        structure_stats)
from melodia.midi import TEMPO_DTYPE, Score, Track, make_notes, write_midi

RIFF = [(0, 45, 0.5), (2, 45, 0.25), (3, 48, 0.25), (4, 50, 0.5), (6, 52, 0.25), (7, 50, 0.25),
        (8, 45, 0.5), (10, 43, 0.25), (11, 45, 0.25), (12, 48, 0.5), (14, 47, 0.25),
        (16, 45, 0.5), (18, 45, 0.25), (19, 48, 0.25), (20, 50, 0.5), (22, 55, 0.25),
        (24, 52, 0.5), (26, 50, 0.25), (27, 48, 0.25), (28, 47, 0.5), (30, 45, 0.5)]  # 2 bars


def looped_riff(qpm: float = 120.0, times: int = 8) -> np.ndarray:
    """A 2-bar bass riff (16th positions, pitch, length in quarters) played ``times`` times."""
    sixteenth = 60.0 / qpm / 4
    rows = [(32 * k + pos, pitch, length) for k in range(times) for pos, pitch, length in RIFF]
    pos, pitch, length = (np.array(x, float) for x in zip(*rows))
    start = pos * sixteenth
    return make_notes(start, start + length * 4 * sixteenth * 0.9, pitch.astype(int),
                      np.full(len(pos), 90))


def random_notes(seed: int = 0, count: int = 200, seconds: float = 30.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    start = np.sort(rng.uniform(0, seconds, count))
    return make_notes(start, start + rng.uniform(0.05, 0.6, count), rng.integers(30, 90, count),
                      rng.integers(40, 110, count))


def test_a_looped_riff_comes_back_and_random_notes_do_not():
    loop, noise = looped_riff(), random_notes()
    assert bar_return(loop, None) == pytest.approx(14 / 15)  # all but the riff's 2nd bar
    assert motif_recurrence(loop) >= 0.9 and rhythm_recurrence(loop) >= 0.9
    assert chroma_return(loop, 32.0) >= 0.95
    assert bar_return(noise, None) <= 0.1
    assert motif_recurrence(noise) <= 0.1 and rhythm_recurrence(noise) <= 0.2


def test_bar_return_counts_bars_at_the_files_tempo():
    loop = looped_riff(qpm=100.0)
    tempo = np.array([(0.0, 100.0)], dtype=TEMPO_DTYPE)
    assert bar_return(loop, tempo) == pytest.approx(14 / 15)
    assert bar_return(loop, None) < 0.5  # read at 120 qpm the bars no longer line up
    # only the first 2-bar riff: bar 2 differs from bar 1, so nothing returns
    assert bar_return(loop[:len(RIFF)], tempo) == 0.0
    assert math.isnan(bar_return(loop[:3], tempo))  # one bar: nothing to return to


def test_bar_return_threshold_is_jaccard_of_position_and_pitch():
    sixteenth = 0.125  # 120 qpm
    bar1 = [(0, 36), (4, 38), (8, 36), (12, 38), (2, 42)]
    bar2 = [(0, 36), (4, 38), (8, 36), (12, 38), (6, 42)]  # 4 of 6 in the union: 0.67
    rows = [(p * sixteenth, pitch) for p, pitch in bar1] + [
        (2.0 + p * sixteenth, pitch) for p, pitch in bar2]
    start, pitch = (np.array(x) for x in zip(*rows))
    notes = make_notes(start, start + 0.05, pitch, np.full(len(rows), 100))
    assert bar_return(notes, None) == 0.0
    assert bar_return(notes, None, threshold=0.6) == 1.0


def test_chord_share_and_gap_entropy_have_exact_values():
    # 10 onset groups every 0.5 s; groups 0, 3, 6, 9 are triads (notes 10 ms apart: struck together)
    rows = []
    for g in range(10):
        pitches = [60, 64, 67] if g % 3 == 0 else [72]
        rows += [(g * 0.5 + 0.01 * i, p) for i, p in enumerate(pitches)]
    start, pitch = (np.array(x) for x in zip(*rows))
    notes = make_notes(start, start + 0.3, pitch, np.full(len(rows), 80))
    assert chord_share(notes) == pytest.approx(0.4)
    assert ioi_entropy(notes) == 0.0  # one gap length throughout
    # gaps alternating 0.1 s and 0.4 s: two bins, equally common -> 1 bit
    times = np.cumsum([0.0] + [0.1, 0.4] * 10)
    alternating = make_notes(times, times + 0.05, np.full(len(times), 60), np.full(len(times), 80))
    assert set(gap_bins(alternating)) == {6, 10}  # 10 ms * 2 ** (6 / 2) = 80 ms; ** 5 = 320 ms
    assert ioi_entropy(alternating) == pytest.approx(1.0)


def test_chroma_return_compares_with_windows_ended_two_seconds_before():
    def piece(second_pitch):  # 6 s of C, then 2 s of one other pitch
        return make_notes([0.0, 6.0], [6.0, 8.0], [60, second_pitch], [80, 80])

    assert chroma_return(piece(72), 8.0) == pytest.approx(1.0)  # C again, an octave up
    assert chroma_return(piece(66), 8.0) == pytest.approx(0.0)  # F#: never heard before
    assert math.isnan(chroma_return(piece(66), 5.0))  # no window from 6 s on


def test_structure_statistics_are_in_every_excerpt_and_undefined_without_notes():
    assert STAT_NAMES[-len(STRUCTURE_NAMES):] == STRUCTURE_NAMES
    stats = excerpt_stats(looped_riff(), 32.0)
    assert {k: stats[k] for k in STRUCTURE_NAMES} == structure_stats(looped_riff(), 32.0)
    empty = structure_stats(make_notes([], [], [], []), 30.0)
    assert all(math.isnan(v) for v in empty.values())


def _band_file(path, drums, bass, qpm):
    score = Score(tracks=[Track(notes=drums, is_drum=True), Track(notes=bass, program=33)],
                  tempos=np.array([(0.0, qpm)], dtype=TEMPO_DTYPE))
    return write_midi(score, path)


def test_band_files_read_back_measure_bar_return_per_group(tmp_path):
    qpm = 100.0
    loop = looped_riff(qpm)
    beat = 60.0 / qpm
    hits = np.arange(128) * beat / 2  # an eighth-note kick and snare groove, 16 bars
    drums = make_notes(hits, hits + 0.05, np.where(np.arange(128) % 4 == 2, 38, 36),
                       np.full(128, 100))
    looped = measure_band_file(_band_file(tmp_path / "loop.mid", drums, loop, qpm),
                               BandEvalConfig(excerpt_s=40.0))
    noisy = measure_band_file(_band_file(tmp_path / "noise.mid", random_notes(1, 120, 30.0),
                                         random_notes(2, 120, 30.0), qpm),
                              BandEvalConfig(excerpt_s=40.0))
    for group in ("drums", "bass"):
        column = stat_names(group).index("bar_return")
        assert looped.groups[group].values[0, column] >= 0.9
        assert noisy.groups[group].values[0, column] <= 0.15


def test_evaluate_json_shows_the_structure_statistics(tmp_path, capsys):
    for name, notes in (("a", looped_riff()), ("b", random_notes(3))):
        (tmp_path / name).mkdir()
        write_midi(Score(tracks=[Track(notes=notes)]), tmp_path / name / "x.mid")
    assert cli.main(["evaluate", "--generated", str(tmp_path / "a"), "--reference",
                     str(tmp_path / "b"), "--json", "--quiet", "--min-excerpts", "1"]) == 0
    stats = {s["name"]: s for s in json.loads(capsys.readouterr().out)["stats"]}
    assert stats["motif_recurrence"]["generated_mean"] >= 0.9
    assert stats["motif_recurrence"]["reference_mean"] <= 0.1
