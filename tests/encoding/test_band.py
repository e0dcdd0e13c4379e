import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from melodia.encoding import BandConfig, get_encoding
from melodia.midi import TEMPO_DTYPE, Score, Track, make_notes, read_midi, write_midi
from melodia.midi.instruments import DRUMS
from tests.conftest import DATA, real_midi_files
from tests.encoding.test_performance import assert_same_notes, midi_round_trip

BAND = get_encoding("band")


def band_score():
    bass = Track(notes=make_notes([0.0, 0.5], [0.5, 1.0], [40, 43], [90, 70]), program=33,
                 name="bass")
    drums = Track(notes=make_notes([0.0, 0.25, 0.5], [0.1, 0.35, 0.6], [36, 42, 38],
                                   [120, 60, 100]), is_drum=True, program=16)
    keys = Track(notes=make_notes([0.0], [1.0], [60], [64]), program=0)
    tempos = np.array([(0.0, 100.0), (0.5, 150.0)], dtype=TEMPO_DTYPE)
    return Score(tracks=[bass, drums, keys], tempos=tempos)


def test_config_json_round_trip(tmp_path):
    config = BandConfig(tempo_bins=16, max_instruments=8)
    config.save(tmp_path / "band.json")
    assert BandConfig.load(tmp_path / "band.json") == config


def test_round_trip_keeps_program_drums_velocity_time(tmp_path):
    score = band_score()
    decoded = read_midi(write_midi(BAND.decode(BAND.encode(score)), tmp_path / "b.mid"))
    by_kind = {(t.program, t.is_drum): t for t in decoded.tracks}
    assert set(by_kind) == {(33, False), (0, True), (0, False)}
    drums = by_kind[(0, True)]
    assert drums.notes["pitch"].tolist() == [36, 42, 38]
    np.testing.assert_allclose(drums.notes["start_s"], [0.0, 0.25, 0.5], atol=0.005)
    bass = by_kind[(33, False)]
    assert bass.notes["velocity"].tolist() == [89, 69]  # bins 23 and 18 -> their lowest velocity


def test_program_events_precede_notes_only_when_instrument_changes():
    events = BAND.describe(BAND.encode(band_score()))
    programs = [e for e in events if e.startswith("PROGRAM")]
    assert programs[0] == "PROGRAM 0" and f"PROGRAM {DRUMS}" in programs
    assert len(programs) < sum(e.startswith("NOTE") for e in events)


def test_tempo_map_survives_within_a_bin(tmp_path):
    decoded = read_midi(write_midi(BAND.decode(BAND.encode(band_score())), tmp_path / "t.mid"))
    np.testing.assert_allclose(decoded.tempos["time_s"], [0.0, 0.5], atol=0.002)
    assert abs(decoded.tempos["qpm"][0] / 100.0 - 1) < 0.04
    assert abs(decoded.tempos["qpm"][1] / 150.0 - 1) < 0.04


def test_tempo_never_moves_notes():
    score = band_score()
    slow = Score(tracks=score.tracks, tempos=np.array([(0.0, 40.0)], TEMPO_DTYPE))
    assert_same_notes(BAND.quantize(score), BAND.quantize(slow))


def test_same_program_tracks_merge_and_pitch_conflicts_resolve():
    a = Track(notes=make_notes([0.0], [1.0], [50], [80]), program=30)
    b = Track(notes=make_notes([0.5], [2.0], [50], [80]), program=30)
    decoded = BAND.decode(BAND.encode(Score(tracks=[a, b])))
    assert len(decoded.tracks) == 1
    assert decoded.tracks[0].notes[["start_s", "end_s"]].tolist() == [(0.0, 0.5), (0.5, 2.0)]


def test_doubled_notes_keep_the_last_tracks_velocity_on_every_machine():
    # Doom-style doubling: two tracks of one program strike the same note at once. The encoder's
    # sort is stable, so which velocity survives does not hang on the CPU's SIMD sort (it did:
    # 14 Freedoom files encoded differently on two machines of this project).
    onsets = np.arange(40) * 0.25
    tracks = [Track(notes=make_notes(onsets, onsets + 0.2, [50] * 40, [v] * 40), program=30)
              for v in (40, 120)]
    for order in (tracks, tracks[::-1]):
        decoded = BAND.decode(BAND.encode(Score(tracks=order)))
        velocities = set(decoded.tracks[0].notes["velocity"].tolist())
        assert len(decoded.tracks[0].notes) == 40
        assert len(velocities) == 1 and abs(velocities.pop() - order[-1].notes["velocity"][0]) <= 4


def test_at_most_16_instruments_keeping_the_busiest():
    tracks = [Track(notes=make_notes(np.arange(n) * 0.1, np.arange(n) * 0.1 + 0.05,
                                     [60] * n, [80] * n), program=p)
              for p, n in zip(range(20), range(1, 21))]
    tracks.append(Track(notes=make_notes([0.0], [0.1], [36], [100]), is_drum=True))
    decoded = BAND.decode(BAND.encode(Score(tracks=tracks)))
    assert len(decoded.tracks) == 16
    assert sorted(t.program for t in decoded.tracks if not t.is_drum) == list(range(5, 20))
    assert any(t.is_drum for t in decoded.tracks)


def test_drums_ignore_sustain_pedal():
    from tests.conftest import pedal_track
    drums = pedal_track([(0.0, 0.1, 36, 100)], [(0.0, 127), (3.0, 0)])
    drums.is_drum = True
    q = BAND.quantize(Score(tracks=[drums]))
    assert q["end"].tolist() == [10]


@pytest.mark.parametrize("path", real_midi_files(), ids=lambda p: p.name)
def test_round_trip_real_files_band(path, tmp_path):
    expected, got = midi_round_trip(BAND, path, tmp_path)
    assert_same_notes(expected, got)


def test_round_trip_keeps_tempo_of_real_band_file(tmp_path):
    path = DATA / "freedoom" / "doom1_D_E1M1.mid"
    score = read_midi(path)
    back = read_midi(write_midi(BAND.decode(BAND.encode(score)), tmp_path / "e1m1.mid"))
    assert BAND.quantize_tempos(back)[1].tolist() == BAND.quantize_tempos(score)[1].tolist()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 548), max_size=400))
def test_any_band_sequence_decodes_to_valid_midi(tmp_path_factory, ids):
    score = BAND.decode(ids)
    assert len(score.tracks) <= 16
    back = read_midi(write_midi(score, tmp_path_factory.mktemp("band") / "any.mid"))
    assert back.note_count == score.note_count


band_notes = st.lists(
    st.tuples(st.floats(0, 20, allow_nan=False), st.floats(0, 5, allow_nan=False),
              st.integers(0, 127), st.integers(1, 127), st.integers(0, 128)),
    max_size=100)


@settings(max_examples=60, deadline=None)
@given(band_notes)
def test_round_trip_random_band_notes(tmp_path_factory, rows):
    tracks = []
    for instrument in sorted({r[4] for r in rows}):
        part = [r for r in rows if r[4] == instrument]
        tracks.append(Track(
            notes=make_notes([r[0] for r in part], [r[0] + r[1] for r in part],
                             [r[2] for r in part], [r[3] for r in part]),
            program=0 if instrument == DRUMS else instrument, is_drum=instrument == DRUMS))
    expected, got = midi_round_trip(BAND, Score(tracks=tracks), tmp_path_factory.mktemp("b"))
    assert_same_notes(expected, got)
