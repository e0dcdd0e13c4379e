import struct

import mido
import numpy as np
import pytest

from melodia.encoding import get_encoding
from melodia.errors import MidiReadError
from melodia.midi import (MAX_SECONDS, TEMPO_DTYPE, TIME_SIGNATURE_DTYPE, Score, Track,
                          file_channels, from_pretty_midi, load_score, make_notes, midi_bytes,
                          read_midi, seconds_for_bars, to_pretty_midi, write_midi)
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


# ------------------------------------------------------------------------- DAW-ready output


def _band() -> Score:
    """Bass, guitar, drums and a second guitar on the same program; no names given."""
    bass = Track(notes=make_notes([0.0, 1.0], [0.9, 1.9], [40, 43], [90, 90]), program=33)
    guitar = Track(notes=make_notes([0.0], [2.0], [52], [80]), program=30)
    drums = Track(notes=make_notes([0.0, 0.5, 1.0], [0.1, 0.6, 1.1], [36, 38, 36], [110] * 3),
                  is_drum=True)
    guitar2 = Track(notes=make_notes([1.0], [1.5], [64], [70]), program=30)
    tempos = np.array([(0.0, 100.0)], dtype=TEMPO_DTYPE)
    return Score(tracks=[bass, guitar, drums, guitar2], tempos=tempos)


def _timed(track: mido.MidiTrack) -> list[tuple[int, mido.Message]]:
    now, out = 0, []
    for message in track:
        now += message.time
        out.append((now, message))
    return out


def _check_daw_ready(mf: mido.MidiFile, names: list[str], programs: list[int], drums: str,
                     qpm: float, time_signature: tuple[int, int] = (4, 4)) -> None:
    """Type 1; tempo and time signature at tick 0; named tracks, each on its own channel with its
    program change first; drums (the track named ``drums``) alone on channel 9."""
    assert mf.type == 1
    metas = [(t, m) for track in mf.tracks for t, m in _timed(track) if m.is_meta]
    assert any(t == 0 and m.type == "set_tempo" and m.tempo == mido.bpm2tempo(qpm)
               for t, m in metas)
    assert any(t == 0 and m.type == "time_signature"
               and (m.numerator, m.denominator) == time_signature for t, m in metas)
    parts = [tr for tr in mf.tracks if any(m.type == "note_on" for m in tr)]
    assert [tr.name for tr in parts] == names
    channels = []
    for track in parts:
        voice = [(t, m) for t, m in _timed(track) if not m.is_meta]
        assert voice[0][0] == 0 and voice[0][1].type == "program_change"
        used = {m.channel for _, m in voice}
        assert len(used) == 1
        channels.append(used.pop())
        assert voice[0][1].program == programs[len(channels) - 1]
    for name, channel in zip(names, channels):
        assert (channel == 9) == (name == drums)
    assert len(set(channels)) == len(channels)


def test_written_band_is_daw_ready(tmp_path):
    path = write_midi(_band(), tmp_path / "band.mid")
    mf = mido.MidiFile(path)
    _check_daw_ready(mf, ["Electric Bass (finger)", "Distortion Guitar", "Drums",
                          "Distortion Guitar"], [33, 30, 0, 30], drums="Drums", qpm=100.0)
    assert not any(m.type in ("note_on", "note_off") for m in mf.tracks[0])  # a tempo track
    drum_notes = [m.note for tr in mf.tracks for m in tr if m.type == "note_on" and m.channel == 9]
    assert drum_notes == [36, 38, 36]
    back = read_midi(path)
    assert [(t.name, t.program, t.is_drum, len(t.notes)) for t in back.tracks] == [
        ("Electric Bass (finger)", 33, False, 2), ("Distortion Guitar", 30, False, 1),
        ("Drums", 0, True, 3), ("Distortion Guitar", 30, False, 1)]
    assert back.time_signatures.tolist() == [(0.0, 4, 4)]


def test_time_signatures_and_late_tempo_round_trip(tmp_path):
    ts = np.array([(0.0, 3, 4), (2.0, 6, 8)], dtype=TIME_SIGNATURE_DTYPE)
    tempos = np.array([(1.0, 60.0)], dtype=TEMPO_DTYPE)  # nothing at 0 s: MIDI's 120 holds
    notes = make_notes([1.5], [2.5], [60], [90])
    path = write_midi(Score(tracks=[Track(notes=notes, name="Lead")], tempos=tempos,
                            time_signatures=ts), tmp_path / "ts.mid")
    conductor = [(t, m.type, getattr(m, "tempo", None), getattr(m, "numerator", None))
                 for t, m in _timed(mido.MidiFile(path).tracks[0])]
    # 1 s at 120 qpm = 2 quarters = 960 ticks; 2 s = 960 + 1 quarter at 60 qpm = 1440 ticks
    assert (0, "set_tempo", 500000, None) in conductor
    assert (960, "set_tempo", 1000000, None) in conductor
    assert (0, "time_signature", None, 3) in conductor
    assert (1440, "time_signature", None, 6) in conductor
    back = read_midi(path)
    assert back.time_signatures.tolist() == [(0.0, 3, 4), (2.0, 6, 8)]
    np.testing.assert_allclose(back.tempos["qpm"], [120.0, 60.0])
    note = back.tracks[0].notes[0]
    np.testing.assert_allclose([note["start_s"], note["end_s"]], [1.5, 2.5])


def test_file_without_time_signature_reads_as_4_4(tmp_path):
    path = tmp_path / "odd.mid"
    path.write_bytes(type0_running_status_odd_meta())
    assert read_midi(path).time_signatures.tolist() == [(0.0, 4, 4)]


def test_pretty_midi_path_is_daw_ready(tmp_path):
    score = _band()
    score.time_signatures = np.array([(0.0, 3, 4)], dtype=TIME_SIGNATURE_DTYPE)
    pm = to_pretty_midi(score)
    assert [(ts.numerator, ts.denominator, ts.time) for ts in pm.time_signature_changes] == \
        [(3, 4, 0.0)]
    assert [(i.name, i.program, i.is_drum) for i in pm.instruments] == [
        ("Electric Bass (finger)", 33, False), ("Distortion Guitar", 30, False),
        ("Drums", 0, True), ("Distortion Guitar", 30, False)]
    pm.write(str(tmp_path / "pm.mid"))  # pretty_midi's own writer (Generated.pretty_midi users)
    _check_daw_ready(mido.MidiFile(tmp_path / "pm.mid"), [i.name for i in pm.instruments],
                     [33, 30, 0, 30], drums="Drums", qpm=100.0, time_signature=(3, 4))
    assert from_pretty_midi(pm).time_signatures.tolist() == [(0.0, 3, 4)]


def test_channels_fit_15_melodic_tracks_and_any_drums(tmp_path):
    one = make_notes([0.0], [0.5], [60], [90])
    tracks = [Track(notes=one, program=p) for p in range(15)]
    tracks[3:3] = [Track(notes=one, is_drum=True)]
    tracks.append(Track(notes=one, is_drum=True, name="Toms"))
    assert file_channels(Score(tracks=tracks)) == [0, 1, 2, 9, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13,
                                                   14, 15, 9]
    mf = mido.MidiFile(write_midi(Score(tracks=tracks), tmp_path / "full.mid"))
    assert len(mf.tracks) == 18
    with pytest.raises(ValueError, match="15 melodic"):
        midi_bytes(Score(tracks=tracks + [Track(notes=one)]))


def test_note_shorter_than_a_tick_is_not_left_hanging(tmp_path):
    notes = make_notes([0.5, 0.5], [0.5, 1.0], [60, 64], [90, 90])
    path = write_midi(Score(tracks=[Track(notes=notes)]), tmp_path / "short.mid")
    events = [(t, m.type, m.note) for t, m in _timed(mido.MidiFile(path).tracks[1])
              if m.type.startswith("note")]
    assert events.index((480, "note_on", 60)) < events.index((480, "note_off", 60))
    assert sorted(read_midi(path).tracks[0].notes["pitch"].tolist()) == [60, 64]


def test_seconds_for_bars():
    assert seconds_for_bars(8, 120.0) == 16.0
    assert seconds_for_bars(4, 90.0, beats_per_bar=3) == 8.0
    assert seconds_for_bars(0, 100.0) == 0.0
    for bad in [(-1, 120.0), (4, 0.0), (4, -60.0)]:
        with pytest.raises(ValueError):
            seconds_for_bars(*bad)
    with pytest.raises(ValueError):
        seconds_for_bars(4, 120.0, beats_per_bar=0)


# ------------------------------------------------------------------------- hostile input


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def one_note_after(delta: int, tempo: bytes = b"\xff\xff\xff", tpq: int = 1,
                   spacers: int = 0) -> bytes:
    """A type 0 file: a tempo, ``spacers`` empty text events each ``delta`` ticks apart, then one
    note ``delta`` ticks later (44 bytes with the defaults)."""
    track = (b"\x00\xff\x51\x03" + tempo + (_vlq(delta) + b"\xff\x01\x00") * spacers
             + _vlq(delta) + b"\x90\x3c\x64" + b"\x01\x80\x3c\x40" + b"\x00\xff\x2f\x00")
    return chunk(b"MThd", struct.pack(">HHH", 0, 1, tpq)) + chunk(b"MTrk", track)


def test_absurdly_long_file_is_refused_before_encoding():
    data = one_note_after(0x0FFFFFFF)  # tempo 16.7 s per tick: the note starts 142 years in
    assert len(data) == 44
    for name in ("piano", "band"):
        with pytest.raises(MidiReadError, match=r"longer than 2 h \(1251000 h\): ") as info:
            get_encoding(name).encode(data)
        assert "\n" not in str(info.value)
    with pytest.raises(MidiReadError, match="longer than 1 h"):
        read_midi(one_note_after(3 * 3600 * 2, tempo=b"\x07\xa1\x20", tpq=1), max_seconds=3600)
    assert read_midi(one_note_after(0x0FFFFFFF), max_seconds=None).end_s > 4e9
    with pytest.raises(MidiReadError, match="longer than"):
        get_encoding("piano").encode(read_midi(data, max_seconds=None))  # a Score is checked too


def test_delta_times_past_2_31_ticks_are_a_read_error():
    data = one_note_after(0x0FFFFFFF, tempo=b"\x07\xa1\x20", tpq=480, spacers=8)  # 2.4e9 ticks
    for max_seconds in (MAX_SECONDS, None):
        with pytest.raises(MidiReadError, match="2\\^31") as info:
            read_midi(data, max_seconds=max_seconds)
        assert "\n" not in str(info.value)


def test_data_bytes_over_127_are_clipped_with_a_warning(caplog):
    track = (b"\x00\xc0\x05" b"\x00\xb0\x07\xa8"  # program 5, then volume CC with value 168
             b"\x00\x90\x3c\x64" b"\x60\x80\x3c\x40" b"\x00\xff\x2f\x00")
    data = chunk(b"MThd", struct.pack(">HHH", 0, 1, 96)) + chunk(b"MTrk", track)
    with caplog.at_level("WARNING", logger="melodia.midi"):
        score = read_midi(data)
    (track,) = score.tracks
    assert track.notes["pitch"].tolist() == [60] and track.program == 5
    (record,) = [r for r in caplog.records if "clipped" in r.message]
    assert "bad data byte" in record.message and "\n" not in record.message
    assert len(get_encoding("piano").encode(data)) > 0


@pytest.mark.parametrize("name", ["piano", "band"])
@pytest.mark.parametrize("tail", [[], [60, 355, 188]])
def test_three_hours_of_time_shifts_decode_to_a_readable_file(tmp_path, name, tail):
    import pretty_midi

    ids = [355] * 10800 + tail  # 3 h of TIME_SHIFT 1 s, then maybe a note
    score = get_encoding(name).decode(ids)
    path = write_midi(score, tmp_path / "long.mid")
    end_s = 10801.0 if tail else 10800.0
    notes_end_s = end_s if tail else 0.0
    assert score.end_s == end_s
    assert pretty_midi.PrettyMIDI(str(path)).get_end_time() == pytest.approx(notes_end_s,
                                                                             abs=0.02)
    assert mido.MidiFile(path).length == pytest.approx(end_s, abs=0.02)
    assert read_midi(path, max_seconds=None).end_s == pytest.approx(notes_end_s, abs=0.02)


def test_thirty_hours_still_fit_pretty_midi_tick_limit(tmp_path):
    import pretty_midi

    path = write_midi(get_encoding("piano").decode([355] * 108000 + [60, 355, 188]),
                      tmp_path / "long.mid")
    assert mido.MidiFile(path).ticks_per_beat < 480
    assert pretty_midi.PrettyMIDI(str(path)).get_end_time() == pytest.approx(108001.0, abs=0.05)


def test_cli_encode_of_an_absurd_file_prints_one_line(tmp_path, capsys):
    from melodia import cli

    (tmp_path / "long.mid").write_bytes(one_note_after(0x0FFFFFFF))
    assert cli.main(["encode", str(tmp_path / "long.mid")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "longer than 2 h" in err[0] and "long.mid" in err[0]


def test_track_name_outside_latin_1_is_written(tmp_path):
    notes = make_notes([0.0], [1.0], [60], [90])
    score = Score(tracks=[Track(notes=notes, name="Gitarre \ufffd \u266a")])
    path = write_midi(score, tmp_path / "name.mid")
    assert read_midi(path).tracks[0].name == "Gitarre ? ?"


def test_load_score_takes_file_objects_and_mido_files(tmp_path):
    import io

    import mido

    from melodia.midi import load_score

    path = tmp_path / "x.mid"
    notes = make_notes(np.array([0.0, 0.5]), np.array([0.4, 1.0]), np.array([60, 62]),
                       np.array([90, 70]))
    write_midi(Score(tracks=[Track(notes=notes)]), path)
    expected = load_score(path).tracks[0].notes
    with open(path, "rb") as f:
        assert (load_score(f).tracks[0].notes == expected).all()
    assert (load_score(io.BytesIO(path.read_bytes())).tracks[0].notes == expected).all()
    assert (load_score(mido.MidiFile(path)).tracks[0].notes == expected).all()
