"""Harmony, rhythm and bar figures on cases whose values are known."""

import math

import numpy as np

from melodia.evaluate.accompaniment import (accompaniment_scores, bar_distance, bar_neighbours,
                                            bass_in_beat, broken_link, harmonic_agreement,
                                            implied_triad, rhythmic_alignment, seam_distances)
from melodia.midi import TEMPO_DTYPE, Score, Track, make_notes, midi_bytes, read_midi
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


def test_bass_in_beat_on_a_written_file_counts_sounding_pitch_classes_alone():
    # 60 qpm for 2 s (beats 0, 1), then 120 (beats 2.. each 0.5 s): the file's tempo map
    tempos = np.array([(0.0, 60.0), (2.0, 120.0)], dtype=TEMPO_DTYPE)
    keys = notes([60, 64, 65, 69], [0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 2.5, 2.5])  # C E | F A
    bass = notes([36, 43, 41, 37, 38, 40], [0.0, 0.75, 2.0, 2.25, 3.0, 0.5],
                 [0.5, 0.9, 2.2, 2.4, 3.4, 0.7])
    # beat 0: C yes, G no (implied, not sounding), E yes; beat 2: F yes, C# no; beat 4: silent
    guitar = notes([49], [0.0], [0.5])  # a new chord part: not a bass note
    data = midi_bytes(Score([Track(keys, program=0), Track(bass, program=33),
                             Track(guitar, program=29)], tempos=tempos))
    back = read_midi(data)
    given, new = back.tracks[:1], back.tracks[1:]
    assert bass_in_beat([given[0].notes], [new[0].notes], back.tempos) == 3 / 5
    scores = accompaniment_scores(given, new, back.tempos)
    assert scores["bass"] == 3 / 5 and scores["harmonic"] == 4 / 6  # G counts there, C# not
    # at 120 qpm throughout 0.75 s is beat 1, where C and E still sound: G misses all the same
    assert bass_in_beat([keys], [notes([43, 36], [0.75, 0.6], [0.9, 0.7])], None) == 0.5
    assert math.isnan(bass_in_beat([keys], [notes([38], [3.0], [3.4])], tempos))
    assert math.isnan(bass_in_beat([keys], [], tempos))


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
    assert scores == {"harmonic": 1.0, "bass": 1.0, "rhythmic": 1.0}


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
