import struct

import mido
import numpy as np
import pytest

from melodia.errors import MidiReadError
from melodia.midi import (TEMPO_DTYPE, Score, Track, from_pretty_midi, load_score, make_notes,
                          read_midi, to_pretty_midi, write_midi)
from tests.conftest import DATA, MALFORMED


def chunk(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack(">I", len(body)) + body


def type0_running_status_odd_meta() -> bytes:
    """Type 0, 96 tpq: tempo change, a key signature with mode byte 5, running-status notes."""
    track = (
        b"\x00\xff\x51\x03\x07\xa1\x20"  # tempo 500000 us/quarter (120 qpm)
        b"\x00\xff\x59\x02\x02\x05"  # key signature: 2 sharps, mode 5 (impossible)
        b"\x00\xc0\x05"  # program change: 5
        b"\x00\x90\x3c\x64"  # note on C4 vel 100
        b"\x60\x40\x50"  # running status: +96 ticks, note on E4 vel 80
        b"\x60\x3c\x00"  # running status: note on C4 vel 0 = off at 1 quarter... +96
        b"\x00\xff\x51\x03\x0f\x42\x40"  # tempo 1000000 us/quarter (60 qpm)
        b"\x60\x40\x00"  # note off E4 after one slow quarter (1 s)
        b"\x00\xff\x2f\x00"
    )
    return chunk(b"MThd", struct.pack(">HHH", 0, 1, 96)) + chunk(b"MTrk", track)


def test_type0_running_status_and_impossible_key_signature(tmp_path):
    path = tmp_path / "odd.mid"
    path.write_bytes(type0_running_status_odd_meta())
    with pytest.raises(Exception):
        import pretty_midi
        pretty_midi.PrettyMIDI(str(path))  # a pure-Python reader chokes on the mode byte
    score = read_midi(path)
    (track,) = score.tracks
    assert track.program == 5
    assert track.notes["pitch"].tolist() == [60, 64]
    np.testing.assert_allclose(track.notes["start_s"], [0.0, 0.5])
    np.testing.assert_allclose(track.notes["end_s"], [1.0, 2.0])
    np.testing.assert_allclose(score.tempos["qpm"], [120.0, 60.0])


@pytest.mark.parametrize("name,reason", [
    ("bad_control_byte.mid", "bad data byte"),
    ("truncated.mid", "truncated"),
    ("header_only.mid", "holds none"),
    ("not_midi.mid", "not a MIDI file"),
])
def test_malformed_files_raise_clear_errors(name, reason):
    with pytest.raises(MidiReadError, match=reason) as info:
        read_midi(MALFORMED / name)
    assert info.value.path.endswith(name)


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "zero.mid").write_bytes(b"")
    with pytest.raises(MidiReadError, match="empty"):
        read_midi(tmp_path / "zero.mid")
    with pytest.raises(MidiReadError, match="No such file"):
        read_midi(tmp_path / "missing.mid")
    assert read_midi(MALFORMED / "empty.mid").note_count == 0  # valid file without notes


def test_write_keeps_tempo_programs_and_drum_channel(tmp_path):
    guitar = Track(notes=make_notes([0.0, 1.0], [0.5, 1.5], [52, 55], [90, 91]), program=29)
    drums = Track(notes=make_notes([0.0], [0.1], [36], [110]), is_drum=True)
    tempos = np.array([(0.0, 90.0), (1.0, 140.0)], dtype=TEMPO_DTYPE)
    path = write_midi(Score(tracks=[guitar, drums], tempos=tempos), tmp_path / "out.mid")
    back = read_midi(path)
    assert [(t.program, t.is_drum) for t in back.tracks] == [(29, False), (0, True)]
    np.testing.assert_allclose(back.tempos["qpm"], [90.0, 140.0], rtol=1e-5)
    np.testing.assert_allclose(back.tracks[0].notes["start_s"], [0.0, 1.0], atol=1e-3)
    channels = {m.channel for tr in mido.MidiFile(path).tracks for m in tr if m.type == "note_on"}
    assert 9 in channels and len(channels) == 2


def test_real_band_file_survives_write_and_read(tmp_path):
    score = read_midi(DATA / "freedoom" / "doom1_D_E1M1.mid")
    back = read_midi(write_midi(score, tmp_path / "copy.mid"))
    assert [(t.program, t.is_drum, len(t.notes)) for t in back.tracks] == \
        [(t.program, t.is_drum, len(t.notes)) for t in score.tracks]


def test_pretty_midi_conversions():
    score = read_midi(DATA / "chorales" / "bach__bwv1.6.mxl.mid")
    pm = to_pretty_midi(score)
    assert sum(len(i.notes) for i in pm.instruments) == score.note_count
    assert from_pretty_midi(pm).note_count == score.note_count
    assert load_score(pm).note_count == score.note_count


def test_value_types_refuse_bad_notes():
    with pytest.raises(ValueError, match="start_s <= end_s"):
        make_notes([1.0], [0.5], [60], [64])
    with pytest.raises(ValueError, match="velocity"):
        make_notes([0.0], [0.5], [60], [0])
    with pytest.raises(ValueError, match="program"):
        Track(program=128)
    with pytest.raises(TypeError):
        load_score(42)


def test_top_level_encode_decode_api():
    import sys

    import melodia

    path = DATA / "chorales" / "bach__bwv1.6.mxl.mid"
    ids = melodia.encode(path)
    pm = melodia.decode(ids)
    from melodia.encoding import get_encoding
    expected = len(get_encoding("piano").quantize(read_midi(path)))  # voices merge on a piano
    assert sum(len(i.notes) for i in pm.instruments) == expected
    band = melodia.encode(path, encoding="band")
    assert band.max() >= 388  # PROGRAM / TEMPO events


def test_import_melodia_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, melodia, melodia.encoding, melodia.midi; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
