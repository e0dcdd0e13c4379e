"""Harmony, rhythm and bar figures on cases whose values are known."""

import math

import numpy as np

from melodia.evaluate.accompaniment import (accompaniment_scores, bar_distance, bar_neighbours,
                                            broken_link, harmonic_agreement, implied_triad,
                                            rhythmic_alignment, seam_distances)
from melodia.midi import TEMPO_DTYPE, Score, Track, make_notes
from melodia.midi.bars import bar_set


def notes(pitch, start, end, velocity=None):
    """Notes from columns, pitch first (velocity 80 unless given)."""
    pitch = list(pitch)
    return make_notes(start, end, pitch, velocity if velocity is not None else [80] * len(pitch))



C_MAJOR = notes([60, 64, 67], [0.0] * 3, [4.0] * 3)  # 8 beats at 120


def test_implied_triad_of_a_c_major_chord_and_a_minor():
    profile = np.zeros(12)
    profile[[0, 4, 7]] = 1.0
    assert implied_triad(profile) == {0, 4, 7}
    profile = np.zeros(12)
    profile[[9, 0, 4]] = [2.0, 1.0, 1.0]
    assert implied_triad(profile) == {9, 0, 4}


def test_harmonic_agreement_counts_pitch_classes_in_the_beat():
    bass = notes([48, 55, 49, 50], [0.0, 0.5, 1.0, 1.5], [0.4, 0.9, 1.4, 1.9])
    assert harmonic_agreement([C_MAJOR], [bass], None) == 0.5  # C and G yes, C# and D no


def test_harmonic_agreement_skips_beats_where_the_given_music_is_silent():
    short = notes([60], [0.0], [0.5])  # the first beat only
    bass = notes([48, 61], [0.0, 2.0], [0.4, 2.4])  # C in beat 0; C# where nothing sounds
    assert harmonic_agreement([short], [bass], None) == 1.0
    assert math.isnan(harmonic_agreement([short], [notes([61], [2.0], [2.4])], None))


def test_harmonic_agreement_follows_the_tempo_map():
    tempos = np.array([(0.0, 60.0)], dtype=TEMPO_DTYPE)  # a beat is a second
    chord = notes([60], [0.0], [0.9])
    bass = notes([48, 48], [0.5, 1.5], [0.9, 1.9])  # beat 0 with C; beat 1 silent
    assert harmonic_agreement([chord], [bass], tempos) == 1.0


def test_rhythmic_alignment_on_and_off_the_grid():
    on = notes([36] * 4, [0.0, 0.125, 0.25, 0.51], [0.05, 0.2, 0.3, 0.6])
    assert rhythmic_alignment(on, None) == 1.0  # 0.51 is 10 ms from a 16th
    off = notes([36, 38], [0.0, 0.0625], [0.05, 0.1])  # a 32nd note late: 62.5 ms off
    assert rhythmic_alignment(off, None) == 0.5


def test_broken_link_transposes_and_delays_half_a_beat():
    track = Track(notes([48], [1.0], [1.5]), program=33)
    drums = Track(notes([36], [1.0], [1.1]), is_drum=True)
    moved = broken_link([track, drums], None, np.random.default_rng(3))
    shift = int(moved[0].notes["pitch"][0]) - 48
    assert 1 <= shift <= 11 and moved[1].notes["pitch"][0] == 36
    assert moved[0].notes["start_s"][0] == 1.25 and moved[1].notes["start_s"][0] == 1.25


def test_accompaniment_scores_of_a_real_like_part():
    given = [Track(C_MAJOR, program=0)]
    bass = Track(notes([48, 43], [0.0, 1.0], [0.9, 1.9]), program=33)
    drums = Track(notes([36, 42], [0.0, 0.25], [0.1, 0.3]), is_drum=True)
    scores = accompaniment_scores(given, [bass, drums], None)
    assert scores == {"harmonic": 1.0, "rhythmic": 1.0}


def test_bar_distance_and_neighbours():
    riff = notes([40, 43] * 4, np.arange(8) * 1.0, np.arange(8) * 1.0 + 0.5)  # 2 s bars
    score = Score([Track(riff, program=33)])
    first, second = bar_set(score.tracks, score, 0.0, 2.0), bar_set(score.tracks, score, 2.0, 4.0)
    assert first == {(33, 0, 40), (33, 8, 43)} and bar_distance(first, second) == 0.0
    assert list(bar_neighbours(score.tracks, score)) == [0.0, 0.0, 0.0]
    assert bar_distance(first, {(33, 0, 41)}) == 1.0
    assert bar_distance(first, {(33, 0, 40)}) == 0.5


def test_seam_distances_of_a_changed_bar():
    riff = notes([40, 43] * 4, np.arange(8) * 1.0, np.arange(8) * 1.0 + 0.5)
    riff["pitch"][2:4] = [41, 43]  # bar 2: one of its two notes changed
    score = Score([Track(riff, program=33)])
    before, after = seam_distances(score.tracks, score, 2.0, 4.0)
    assert before == after == 1 - 1 / 3
    first, last = seam_distances(score.tracks, score, 0.0, 8.0)
    assert math.isnan(first) and math.isnan(last)  # the span is the whole piece
