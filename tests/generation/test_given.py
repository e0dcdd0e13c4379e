"""Given material forced into a stream: the forcer, the grid, the grammar's given instruments,
and accompaniment of real files with the shipped band model."""

import numpy as np
import pytest

from melodia.encoding import BandEncoding
from melodia.encoding.events import TIME_SHIFT
from melodia.errors import GenerateError
from melodia.evaluate.accompaniment import rhythmic_alignment
from melodia.generation.accompaniment import accompany_ids
from melodia.generation.config import GenerateConfig
from melodia.generation.given import FREE, Forcer, given_events, grid_steps
from melodia.generation.grammar import Grammar
from melodia.midi import Score, Track, make_notes, midi_bytes, read_midi
from melodia.midi.merge import track_chunks
from tests.conftest import DATA

ENC = BandEncoding()
V = ENC.vocab


def _q(rows):
    """Quantized notes from (start step, end step, pitch, vbin, instrument) rows."""
    from melodia.encoding.quantize import QNOTE_DTYPE

    return np.array(rows, dtype=QNOTE_DTYPE)


def _step(grammar, forcer, ids):
    ids = np.asarray(ids)
    forcer.update(ids, grammar.kinds, grammar.values)
    grammar.advance(ids)


def test_given_events_in_encoding_order():
    events = given_events(_q([(0, 10, 64, 5, 0), (0, 5, 36, 9, 128), (5, 8, 60, 5, 0)]))
    assert events["step"].tolist() == [0, 0, 5, 5, 8, 10]
    assert events["on"].tolist() == [True, True, False, True, False, False]
    assert events["instrument"].tolist()[:2] == [0, 128]  # by instrument within a step


def test_forcer_emits_program_velocity_then_note_and_waits_for_the_next():
    grammar = Grammar(ENC, batch=1)
    grammar.give([0])
    forcer = Forcer(ENC, given_events(_q([(0, 30, 60, 5, 0), (20, 30, 64, 5, 0)])))
    wanted = [V.encode_event("PROGRAM", 0), V.encode_event("VELOCITY", 5),
              V.encode_event("NOTE_ON", 60)]
    for expected in wanted:
        forced = forcer.forced(grammar)
        assert forced.tolist() == [expected]
        _step(grammar, forcer, forced)
    assert forcer.forced(grammar).tolist() == [FREE]  # the model's turn
    mask = forcer.restrict(grammar.mask(), grammar)
    shifts = np.flatnonzero(mask[0] & (grammar.kinds == TIME_SHIFT))
    assert grammar.values[shifts].max() == 20  # never past the next given note
    _step(grammar, forcer, [V.encode_event("TIME_SHIFT", 20)])
    assert forcer.forced(grammar).tolist() == [V.encode_event("NOTE_ON", 64)]  # same velocity


def test_grammar_keeps_the_model_off_given_instruments_but_hears_them():
    grammar = Grammar(ENC, batch=1)
    grammar.give([0])
    for event in [("PROGRAM", 0), ("VELOCITY", 5), ("NOTE_ON", 60)]:
        grammar.advance(np.array([V.encode_event(*event)]))
    mask = grammar.mask()[0]
    assert not mask[V.encode_event("NOTE_OFF", 60)]  # the model cannot end a given note
    assert not mask[V.encode_event("NOTE_ON", 62)] and not mask[V.encode_event("PROGRAM", 0)]
    assert mask[V.encode_event("PROGRAM", 33)]
    assert grammar.count[0] == 0 and grammar.note_state()[0, 60] == 1.0  # heard, not counted


def test_grid_steps_at_120_bpm():
    grid = grid_steps([[0.0, 120.0]], 100, 100)  # a 16th is 12.5 steps, a triplet 16.7
    assert grid[0] and grid[12] and grid[13] and grid[25] and grid[33] and grid[50]
    assert not grid[6] and not grid[40] and not grid[58]


def _given_file(seconds=8.0):
    """A real chorale's first seconds, as MIDI bytes."""
    score = read_midi(DATA / "chorales" / "bach__bwv1.6.mxl.mid")
    tracks = []
    for t in score.tracks:
        keep = t.notes[t.notes["start_s"] < seconds].copy()
        keep["end_s"] = np.minimum(keep["end_s"], seconds)
        tracks.append(Track(keep, program=t.program, is_drum=t.is_drum, name=t.name))
    return midi_bytes(Score(tracks, tempos=score.tempos, time_signatures=score.time_signatures))


@pytest.fixture(scope="module")
def accompanied():
    given = _given_file()
    return given, accompany_ids("band", given, GenerateConfig(seed=3, lineup="drums,bass"))


def test_accompany_keeps_the_song_and_adds_the_lineup(accompanied):
    given, result = accompanied
    out = result.midi_bytes()
    assert track_chunks(out)[: len(track_chunks(given))] == track_chunks(given)
    back = read_midi(out)
    song = read_midi(given)
    new = back.tracks[len(song.tracks):]
    assert sorted(128 if t.is_drum else t.program for t in new) == sorted(result.band["instruments"])
    assert [32 <= t.program < 40 for t in new if not t.is_drum] == [True]  # a bass
    assert all(len(t.notes) > 5 for t in new)
    assert max(t.notes["end_s"].max() for t in new) <= song.end_s + 0.011
    assert result.band["qpm"] == pytest.approx(song.tempos["qpm"][0], rel=0.01)


def test_accompany_drums_lock_to_the_grid(accompanied):
    given, result = accompanied
    drums = next(t for t in result.parts[0] if t.is_drum)
    tempos = read_midi(given).tempos
    grid = grid_steps([[0.0, tempos["qpm"][0]]], 1000, 100)  # 16ths and eighth triplets
    assert grid[np.rint(drums.notes["start_s"] * 100).astype(int)].all()
    assert rhythmic_alignment(drums.notes, tempos) > 0.5  # most on 16ths, the rest triplets


def test_accompany_is_reproducible_by_seed(accompanied):
    given, result = accompanied
    again = accompany_ids("band", given, GenerateConfig(seed=3, lineup="drums,bass"))
    assert again.midi_bytes() == result.midi_bytes()


def test_accompany_refuses_what_it_cannot_do():
    silent = midi_bytes(Score([Track(make_notes([], [], [], []), program=0)], until_s=2.0))
    with pytest.raises(GenerateError, match="no notes"):
        accompany_ids("band", silent, GenerateConfig(seed=1))
    with pytest.raises(GenerateError, match="band model"):
        accompany_ids("piano", _given_file(2.0), GenerateConfig(seed=1))
    drums = midi_bytes(Score([Track(make_notes([0.0], [0.1], [36], [90]), is_drum=True)]))
    with pytest.raises(GenerateError, match="its own drums"):
        accompany_ids("band", drums, GenerateConfig(seed=1, lineup="drums,bass"))


def test_on_grid_agrees_with_grid_steps_and_runs_on_past_it():
    from melodia.generation.given import on_grid

    tempos = np.array([[0.0, 97.0]])
    assert np.array_equal(on_grid(np.arange(2001), tempos, 100), grid_steps(tempos, 2000, 100))
    steady = np.array([[0.0, 120.0]])  # a beat is 50 steps: five hours on, the same grid
    later = on_grid(np.arange(200) + 5 * 3600 * 100, steady, 100)
    assert np.array_equal(later, on_grid(np.arange(200), steady, 100)) and 0 < later.mean() < 1


def test_harmony_guide_favours_the_beats_pitch_classes_for_pitched_parts():
    from melodia.generation.accompaniment import harmony_guide
    from melodia.midi import Score, Track, make_notes

    encoding = BandEncoding()
    song = Score([Track(make_notes([0.0, 0.0], [0.5, 0.5], [60, 64], [80, 80]))])  # C, E: beat 0
    guide = harmony_guide(song, encoding, np.array([[0.0, 120.0]]), 100, 2.0)
    bias = guide.bias(np.array([10, 10, 60]), np.array([33, 128, 33])).numpy()
    on = encoding.vocab.offset("NOTE_ON") - encoding.vocab.range("NOTE_ON").min
    assert bias[0, on + 36] == 2.0 and bias[0, on + 64] == 2.0  # C and E in any octave
    assert bias[0, on + 43] == 2.0  # G: the C major triad they imply
    assert bias[0, on + 37] == 0.0 and bias[1].max() == 0.0  # not C#; drums get nothing
    assert bias[2].max() == 0.0  # beat 1: the song is silent
    assert harmony_guide(song, encoding, np.array([[0.0, 120.0]]), 100, 0.0) is None


def test_harmony_guide_pulls_a_bass_harder_toward_the_sounding_pitch_classes():
    from melodia.generation.accompaniment import harmony_guide

    song = Score([Track(make_notes([0.0, 0.0], [0.5, 0.5], [60, 64], [80, 80]))])  # C, E: beat 0
    guide = harmony_guide(song, ENC, np.array([[0.0, 120.0]]), 100, 0.5, bass=3.0)
    bias = guide.bias(np.array([10, 10, 10]), np.array([33, 29, 128])).numpy()
    on = V.offset("NOTE_ON") - V.range("NOTE_ON").min
    assert bias[0, on + 36] == 3.0 and bias[0, on + 40] == 3.0  # the bass: C and E sound
    assert bias[0, on + 43] == 0.5 and bias[0, on + 37] == 0.0  # G only implied; C# nothing
    assert bias[1, on + 48] == 0.5 and bias[1, on + 43] == 0.5  # a guitar: the chord's pull
    assert bias[2].max() == 0.0  # drums: nothing
    assert harmony_guide(song, ENC, np.array([[0.0, 120.0]]), 100, 0.0, bass=1.0) is not None


def test_accompany_bass_plays_the_sounding_pitch_classes_and_keeps_playing():
    from melodia.evaluate.accompaniment import bass_in_beat
    from melodia.midi.instruments import family_of

    given = _given_file(12.0)
    song = read_midi(given)
    chords = [t.notes for t in song.tracks if not t.is_drum]

    def bass_figures(**harmony):
        result = accompany_ids("band", given, GenerateConfig(seed=5, lineup="drums,bass"),
                               **harmony)
        back = read_midi(result.midi_bytes()).tracks[len(song.tracks):]  # written, read back
        bass = [t.notes for t in back if not t.is_drum and family_of(t.program) == "bass"]
        drums = sum(len(t.notes) for t in back if t.is_drum)
        return bass_in_beat(chords, bass, song.tempos), sum(map(len, bass)), drums

    alone, alone_notes, _ = bass_figures(harmony=0.0)
    leaning, notes, drums = bass_figures()
    assert leaning >= 0.8 and leaning > alone  # on a sounding pitch class, more than alone
    assert notes >= 0.5 * alone_notes and notes >= 10 and drums >= 10  # both keep playing
