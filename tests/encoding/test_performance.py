from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from melodia.encoding import PerformanceConfig, get_encoding
from melodia.encoding.quantize import apply_sustain, bin_to_velocity, velocity_to_bin
from melodia.errors import EncodingError
from melodia.midi import Score, Track, make_notes, read_midi, write_midi
from tests.conftest import pedal_track, real_midi_files

PIANO = get_encoding("piano")


def score_of(*notes, pedal=()):
    return Score(tracks=[pedal_track(list(notes), list(pedal))])


def notes_of(score: Score):
    """(start_s, end_s, pitch, velocity) of every note, sorted, for comparisons."""
    rows = [tuple(n) for t in score.tracks for n in t.notes.tolist()]
    return sorted((round(s, 4), round(e, 4), p, v) for s, e, p, v in rows)


# ------------------------------------------------------------------------------------ config


def test_config_json_round_trip(tmp_path):
    config = PerformanceConfig(steps_per_second=50, velocity_bins=16, sustain=False,
                               max_note_s=4.0)
    config.save(tmp_path / "c.json")
    assert PerformanceConfig.load(tmp_path / "c.json") == config


@pytest.mark.parametrize("bad", [dict(velocity_bins=0), dict(min_pitch=90, max_pitch=10),
                                 dict(steps_per_second=0), dict(max_note_s=0)])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        PerformanceConfig(**bad)


def test_config_rejects_unknown_fields():
    with pytest.raises(ValueError, match="unknown"):
        PerformanceConfig.from_dict({"steps_per_second": 100, "bogus": 1})


def test_velocity_bins_match_magenta():
    velocities = np.arange(1, 128)
    # Magenta: velocity_to_bin = (v - 1) * bins // 127 + 1; bin_to_velocity = 1 + (bin - 1) * 4
    assert (velocity_to_bin(velocities, 32) == (velocities - 1) * 32 // 127 + 1).all()
    bins = np.arange(1, 33)
    assert (bin_to_velocity(bins, 32) == 1 + (bins - 1) * 4).all()
    for n_bins in (1, 7, 16, 32, 127):
        b = np.arange(1, n_bins + 1)
        assert (velocity_to_bin(bin_to_velocity(b, n_bins), n_bins) == b).all()


# ------------------------------------------------------------------------------------ encode


def test_hand_computed_stream():
    # C4 0-0.5 s and E4 0.25-1.5 s at velocity 80 (bin 20), then G4 1.5-2.7 s at 100 (bin 25).
    score = score_of((0.0, 0.5, 60, 80), (0.25, 1.5, 64, 80), (1.5, 2.7, 67, 100))
    ids = PIANO.encode(score)
    assert ids.tolist() == [375, 60, 280, 64, 280, 188, 355, 192, 380, 67, 355, 275, 195]
    assert PIANO.describe(ids)[:3] == ["VELOCITY 20", "NOTE_ON 60", "TIME_SHIFT 25"]


def test_note_off_comes_before_note_on_at_the_same_step():
    ids = PIANO.encode(score_of((0.0, 0.5, 60, 64), (0.5, 1.0, 60, 64)))
    events = PIANO.describe(ids)
    assert events[events.index("NOTE_OFF 60") + 1] == "NOTE_ON 60"
    assert notes_of(PIANO.decode(ids)) == [(0.0, 0.5, 60, 61), (0.5, 1.0, 60, 61)]


def test_drum_tracks_are_not_piano():
    drums = Track(notes=make_notes([0.0], [0.1], [36], [100]), is_drum=True)
    assert len(PIANO.encode(Score(tracks=[drums]))) == 0


# ----------------------------------------------------------------------------------- sustain


def test_sustain_extends_note_to_pedal_release():
    score = score_of((0.0, 0.5, 60, 64), pedal=[(0.2, 127), (1.0, 0)])
    assert notes_of(PIANO.decode(PIANO.encode(score)))[0][:2] == (0.0, 1.0)
    dry = get_encoding("piano", sustain=False)
    assert notes_of(dry.decode(dry.encode(score)))[0][:2] == (0.0, 0.5)


def test_note_released_when_pedal_lifts_is_not_sustained():
    out = apply_sustain(pedal_track([(0.0, 1.0, 62, 64)]).notes,
                        pedal_track([], [(0.5, 127), (1.0, 0)]).pedal)
    assert out["end_s"].tolist() == [1.0]


def test_note_released_as_pedal_goes_down_is_sustained():
    out = apply_sustain(pedal_track([(0.0, 0.5, 62, 64)]).notes,
                        pedal_track([], [(0.5, 127), (2.0, 0)]).pedal)
    assert out["end_s"].tolist() == [2.0]


def test_restruck_pitch_under_pedal_ends_the_earlier_note():
    score = score_of((0.0, 0.3, 60, 64), (0.8, 0.9, 60, 64), pedal=[(0.1, 127), (2.0, 0)])
    got = notes_of(PIANO.decode(PIANO.encode(score)))
    assert [(s, e) for s, e, _, _ in got] == [(0.0, 0.8), (0.8, 2.0)]


def test_pedal_below_threshold_is_up_and_never_lifted_pedal_holds_to_end():
    score = score_of((0.0, 0.5, 60, 64), (1.0, 3.0, 64, 64), pedal=[(0.1, 40)])
    assert notes_of(PIANO.decode(PIANO.encode(score)))[0][1] == 0.5
    score = score_of((0.0, 0.5, 60, 64), (1.0, 3.0, 64, 64), pedal=[(0.1, 127)])
    assert notes_of(PIANO.decode(PIANO.encode(score)))[0][1] == 3.0


# ---------------------------------------------------------------------------- decode rules


def test_unmatched_note_off_is_dropped():
    ids = [128 + 60, 64, 256 + 9, 128 + 64]  # OFF 60 (never on), ON 64, shift 10, OFF 64
    assert notes_of(PIANO.decode(ids)) == [(0.0, 0.1, 64, 64)]


def test_dangling_note_on_is_closed_at_the_end():
    ids = [60, 256 + 49, 64, 256 + 19]  # ON 60, shift 50, ON 64, shift 20: nothing released
    assert notes_of(PIANO.decode(ids)) == [(0.0, 0.7, 60, 64), (0.5, 0.7, 64, 64)]


def test_repeated_note_on_ends_the_sounding_note():
    ids = [60, 256 + 29, 60, 256 + 29, 128 + 60]
    assert notes_of(PIANO.decode(ids)) == [(0.0, 0.3, 60, 64), (0.3, 0.6, 60, 64)]


def test_notes_are_capped_at_max_length():
    enc = get_encoding("piano", max_note_s=2.0)
    ids = [60] + [355] * 5 + [128 + 60]  # a 5 s note
    assert notes_of(enc.decode(ids)) == [(0.0, 2.0, 60, 64)]
    long_note = score_of((0.0, 5.0, 60, 64))
    assert notes_of(enc.decode(enc.encode(long_note))) == [(0.0, 2.0, 60, 61)]


def test_zero_length_notes_are_dropped():
    assert notes_of(PIANO.decode([60, 128 + 60, 62, 62])) == []


def test_velocity_event_sets_following_notes():
    ids = [356 + 24, 60, 256 + 9, 128 + 60]  # VELOCITY 25
    assert notes_of(PIANO.decode(ids)) == [(0.0, 0.1, 60, 97)]


@pytest.mark.parametrize("bad", [[388], [-1], [0, 5, 1000]])
def test_out_of_vocabulary_ids_raise_clearly(bad):
    with pytest.raises(EncodingError, match="outside the vocabulary"):
        PIANO.decode(bad)


def test_non_integer_ids_raise():
    with pytest.raises(EncodingError, match="integers"):
        PIANO.decode([1.5, 2.0])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 387), max_size=400))
def test_any_id_sequence_decodes_to_valid_midi(tmp_path_factory, ids):
    score = PIANO.decode(ids)
    path = write_midi(score, tmp_path_factory.mktemp("any") / "any.mid")
    back = read_midi(path)
    assert back.note_count == score.note_count
    for track in back.tracks:
        assert (track.notes["end_s"] > track.notes["start_s"]).all()


# ---------------------------------------------------------------------------- round trips


def midi_round_trip(enc, source: Path | Score, tmp_path: Path):
    """quantize(x) vs quantize(read(write(decode(encode(x))))): equal note for note."""
    score = read_midi(source) if isinstance(source, Path) else source
    expected = enc.quantize(score)
    decoded = enc.decode(enc.encode(score))
    back = read_midi(write_midi(decoded, tmp_path / "rt.mid"))
    return expected, enc.quantize(back)


def assert_same_notes(a: np.ndarray, b: np.ndarray):
    assert len(a) == len(b)
    for field in a.dtype.names:
        np.testing.assert_array_equal(a[field], b[field], err_msg=field)


@pytest.mark.parametrize("path", real_midi_files(), ids=lambda p: p.name)
def test_round_trip_real_files_piano(path, tmp_path):
    assert_same_notes(*midi_round_trip(PIANO, path, tmp_path))


def test_round_trip_performance_with_pedal(piano_with_pedal, tmp_path):
    expected, got = midi_round_trip(PIANO, piano_with_pedal, tmp_path)
    assert_same_notes(expected, got)
    dry = get_encoding("piano", sustain=False).quantize(read_midi(piano_with_pedal))
    assert (expected["end"] >= dry["end"]).all() and (expected["end"] > dry["end"]).any()


note_lists = st.lists(
    st.tuples(st.floats(0, 30, allow_nan=False), st.floats(0, 12, allow_nan=False),
              st.integers(0, 127), st.integers(1, 127)),
    max_size=120)


@settings(max_examples=80, deadline=None)
@given(note_lists, st.booleans())
def test_round_trip_random_notes(tmp_path_factory, rows, sustain):
    enc = get_encoding("piano", sustain=sustain)
    notes = [(s, s + d, p, v) for s, d, p, v in rows]
    pedal = [(1.0, 127), (4.0, 0), (10.0, 100)] if sustain else []
    score = score_of(*notes, pedal=pedal)
    assert_same_notes(*midi_round_trip(enc, score, tmp_path_factory.mktemp("rt")))
