"""Restyle on real files with known answers: the melody found by name and by shape, the feel's
timing of a known rhythm, the harmony of the whole original, the refusals."""

import dataclasses

import numpy as np
import pytest

from melodia.errors import GenerateError
from melodia.evaluate.accompaniment import beat_pitch_classes
from melodia.evaluate.stats import grid_positions
from melodia.generation.accompaniment import accompany_ids
from melodia.generation.config import GenerateConfig
from melodia.generation.restyle import (apply_feel, feel_for, find_melody, lead_program,
                                        restyle_ids, style_lineup)
from melodia.midi.instruments import parse_lineup
from melodia.model.registry import load_model
from melodia.midi import TEMPO_DTYPE, Score, Track, make_notes, midi_bytes, read_midi
from tests.conftest import DATA

CHORALE = DATA / "chorales" / "bach__bwv1.6.mxl.mid"  # Horn 2, Soprano, Alto, Tenor, Bass


def _reread(score: Score) -> Score:
    return read_midi(midi_bytes(score))


def test_the_melody_of_a_chorale_is_found_by_shape():
    """No track is named like a melody; the soprano is the highest that plays one note at a
    time through the piece (the horn doubling the alto comes first in the file)."""
    score = read_midi(CHORALE)
    assert [score.tracks[i].name for i in find_melody(score)] == ["Soprano"]


def test_a_track_named_like_a_melody_wins_over_shape():
    score = read_midi(CHORALE)
    alto = next(i for i, t in enumerate(score.tracks) if t.name == "Alto")
    score.tracks[alto] = dataclasses.replace(score.tracks[alto], name="Lead Vocal")
    back = _reread(score)
    assert [back.tracks[i].name for i in find_melody(back)] == ["Lead Vocal"]


def test_keep_names_tracks_by_index_name_and_program():
    score = read_midi(CHORALE)
    names = [t.name for t in score.tracks]
    assert [names[i] for i in find_melody(score, "#3")] == ["Alto"]
    assert [names[i] for i in find_melody(score, "tenor,#5")] == ["Tenor", "Bass"]
    with pytest.raises(GenerateError, match="#1..#5"):
        find_melody(score, "#9")
    with pytest.raises(GenerateError, match="unknown part .kazoo."):
        find_melody(score, "kazoo")


def test_block_chords_and_drums_have_no_melody():
    beats = np.arange(16) * 0.5
    chords = Track(make_notes(np.repeat(beats, 3), np.repeat(beats + 0.45, 3),
                              np.tile([60, 64, 67], 16), np.full(48, 80)), name="Piano")
    drums = Track(make_notes(beats, beats + 0.1, np.full(16, 36), np.full(16, 90)),
                  is_drum=True, name="Drums")
    with pytest.raises(GenerateError, match="no melodic track.*--keep"):
        find_melody(_reread(Score([chords, drums])))
    with pytest.raises(GenerateError, match="drums"):
        find_melody(_reread(Score([chords, drums])), "drums")


def _eighths(qpm_map: np.ndarray, beats: int, swung: bool = False) -> np.ndarray:
    """A rising line of eighths (straight, or swung two thirds into each beat), then two
    16ths on beat ``beats`` (at 0.25 and 0.75: the feel leaves them), along ``qpm_map``."""
    from melodia.evaluate.stats import grid_times

    off = 2 / 3 if swung else 0.5
    positions = np.concatenate([np.ravel([[b, b + off] for b in range(beats)]),
                                [beats + 0.25, beats + 0.75]])
    start = grid_times(positions, qpm_map, 1)
    end = np.append(start[1:], start[-1] + 0.1)
    return make_notes(start, end, 48 + np.arange(len(start)), np.full(len(start), 90))


def test_swing_moves_only_the_off_beat_eighths_two_thirds_into_the_beat():
    """Eighths at 120 BPM, then at 60 after a tempo change at 4 s (beat 8): on-beats stay,
    off-beats land two thirds into their beat on the tempo map, legato stays legato, the 16ths
    and every pitch stay in order."""
    tempos = np.array([(0.0, 120.0), (4.0, 60.0)], dtype=TEMPO_DTYPE)
    notes = _eighths(tempos, 12)
    swung, moved = apply_feel(notes, tempos, "swing")
    assert moved == 12
    assert list(swung["pitch"]) == list(notes["pitch"])
    beats = grid_positions(swung["start_s"], tempos, 1)
    np.testing.assert_allclose(beats[:24:2], np.arange(12), atol=1e-9)
    np.testing.assert_allclose(beats[1:24:2], np.arange(12) + 2 / 3, atol=1e-9)
    np.testing.assert_allclose(beats[24:], [12.25, 12.75], atol=1e-9)
    np.testing.assert_allclose(swung["start_s"][1:6:2] - swung["start_s"][0:6:2], 1 / 3)
    np.testing.assert_allclose(swung["start_s"][17:24:2] - swung["start_s"][16:24:2], 2 / 3)
    np.testing.assert_allclose(swung["end_s"][:-1], swung["start_s"][1:])  # legato


def test_the_feel_moves_a_note_played_early_by_a_sixth_of_a_beat_and_keeps_it_early():
    tempos = np.array([(0.0, 120.0)], dtype=TEMPO_DTYPE)
    notes = make_notes([0.0, 0.23, 0.5], [0.23, 0.5, 0.75], [60, 62, 64], [80] * 3)
    swung, moved = apply_feel(notes, tempos, "swing")  # 0.23 s: 0.04 beat before the off-beat
    assert moved == 1
    np.testing.assert_allclose(swung["start_s"], [0.0, 0.23 + 0.5 / 6, 0.5])


def test_a_chord_on_an_off_beat_moves_as_one():
    tempos = np.array([(0.0, 120.0)], dtype=TEMPO_DTYPE)
    notes = make_notes([0.0, 0.25, 0.25, 0.25, 0.5], [0.25, 0.5, 0.5, 0.5, 0.75],
                       [60, 64, 67, 72, 62], [80] * 5)
    swung, moved = apply_feel(notes, tempos, "swing")
    assert moved == 3 and list(swung["pitch"]) == [60, 64, 67, 72, 62]
    np.testing.assert_allclose(swung["start_s"], [0.0, 1 / 3, 1 / 3, 1 / 3, 0.5])


def test_straight_takes_swung_eighths_back_and_leaves_straight_music_alone():
    tempos = np.array([(0.0, 100.0)], dtype=TEMPO_DTYPE)
    straight, moved = apply_feel(_eighths(tempos, 8, swung=True), tempos, "straight")
    assert moved == 8
    np.testing.assert_allclose(straight["start_s"], _eighths(tempos, 8)["start_s"], atol=1e-9)
    again, moved = apply_feel(straight, tempos, "straight")
    assert moved == 0 and np.array_equal(again, straight)


def test_the_feel_and_lead_follow_the_style_unless_told():
    assert feel_for("swing") == "swing" and feel_for("metal") == "straight"
    assert feel_for("swing", "straight") == "straight"
    with pytest.raises(GenerateError, match="choose"):
        feel_for("rock", "shuffle")
    assert lead_program("auto", "swing") == 65 and lead_program(None, "swing") is None
    assert lead_program("trumpet", "rock") == 56 and lead_program("73", None) == 73
    with pytest.raises(GenerateError, match="--lead"):
        lead_program("kazoo", "rock")


def _chord_song() -> Score:
    """8 bars at 120 BPM: a melody of eighths that only repeats C5 over piano chords Am F C G
    (two bars each): the melody alone implies no changes, the whole song does."""
    eighths = np.arange(64) * 0.25
    melody = Track(make_notes(eighths, eighths + 0.2, np.full(64, 72), np.full(64, 90)),
                   name="Melody", program=73)
    chords = {0: (57, 60, 64), 1: (53, 57, 60), 2: (48, 52, 55), 3: (55, 59, 62)}
    start, pitch = [], []
    for bar in range(8):
        for p in chords[bar // 2]:
            start.append(bar * 2.0)
            pitch.append(p)
    piano = Track(make_notes(start, np.array(start) + 2.0, pitch, np.full(len(pitch), 70)),
                  name="Piano")
    return _reread(Score([melody, piano]))


def _bass_on_chords(parts: list[Track], song: Score) -> float:
    """The share of the new bass's beats whose pitch classes are in the song's chords."""
    bass = next(t for t in parts if 32 <= t.program < 40)
    chords = beat_pitch_classes([song.tracks[1].notes], song.tempos, 32) > 0
    heard = beat_pitch_classes([bass.notes], song.tempos, 32)
    return float((heard * chords).sum() / max(heard.sum(), 1e-9))


def test_restyle_plays_the_changes_of_the_whole_original():
    """The band restyling the chord song hears the piano's chords though only the melody is
    kept: its bass sits in Am F C G more than the same band given the melody alone (a strong
    harmony prior, 2, makes the difference plain; at the default 0.5 a walking bass plays
    passing tones: 0.57-0.62 here against 0.47-0.52)."""
    song = _chord_song()
    config = GenerateConfig(seed=4, style="swing", lineup="drums,bass")
    result = restyle_ids("band", midi_bytes(song), config, harmony=2.0)
    assert result.names == ["Melody (Flute)"] and result.feel == "swing" and result.moved == 32
    out = read_midi(result.midi_bytes())
    assert [t.name for t in out.tracks[:1]] == ["Melody"] and len(out.tracks) == 3
    assert list(out.tracks[0].notes["pitch"]) == [72] * 64  # the piano is gone, the melody kept
    alone = accompany_ids("band", midi_bytes(Score([song.tracks[0]], tempos=song.tempos)), config,
                          harmony=2.0)
    changes, melody_only = (_bass_on_chords(result.result.parts[0], song),
                            _bass_on_chords(alone.parts[0], song))
    assert changes > 0.85 and changes > melody_only + 0.1, (changes, melody_only)


def test_restyle_refuses_in_one_clear_line():
    song = midi_bytes(_chord_song())
    with pytest.raises(GenerateError, match="needs a --style"):
        restyle_ids("band", song, GenerateConfig(seed=1))
    with pytest.raises(GenerateError, match="did you mean swing"):
        restyle_ids("band", song, GenerateConfig(seed=1, style="swng"))
    with pytest.raises(GenerateError, match="no pitched part"):
        restyle_ids("band", song, GenerateConfig(seed=1, style="rock", lineup="drums"))
    with pytest.raises(GenerateError, match="band model"):
        restyle_ids("piano", song, GenerateConfig(seed=1, style="rock"))
    long = Score([Track(make_notes([0.0, 1000.0], [1.0, 1001.0], [60, 62], [80, 80]))])
    with pytest.raises(GenerateError, match="up to 15 min"):
        restyle_ids("band", midi_bytes(long), GenerateConfig(seed=1, style="rock"))


def test_the_default_line_up_is_one_the_style_played_less_the_melody():
    info = load_model("band").extra["band"]
    for style in info["styles"]:
        played = [set(row["instruments"]) for row in info["lineups"] if row["style"] == style]
        for seed in range(3):
            lineup = set(parse_lineup(style_lineup(info, style, seed, [26])))
            assert 128 in lineup and len(lineup) > 1 and 26 not in lineup, (style, lineup)
            assert any(lineup <= row for row in played), (style, lineup)
    assert style_lineup({}, "swing", 1, []) == "drums,bass,piano"


def test_repeat_brings_the_new_drums_back_to_their_bars():
    """With the groove plan (repeat as the style's music does) the drums of the chord song's
    8 bars return to earlier bars; without it, none does (same seed)."""
    from melodia.evaluate.structure import bar_return

    song = _chord_song()
    got = {}
    for repeat in (0.0, None):
        config = GenerateConfig(seed=3, style="rock", lineup="drums,bass", repeat=repeat)
        drums = next(t for t in restyle_ids("band", midi_bytes(song), config).result.parts[0]
                     if t.is_drum)
        got[repeat] = bar_return(drums.notes, song.tempos)
    assert got[None] >= 0.5 and got[0.0] <= 0.2, got
