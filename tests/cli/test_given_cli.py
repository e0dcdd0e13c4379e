"""``melodia accompany`` (and the given-material commands) on real files."""

import numpy as np

from melodia import cli
from melodia.midi import Score, Track, midi_bytes, read_midi
from melodia.midi.merge import track_chunks
from tests.conftest import DATA


def _short_song(tmp_path, seconds=6.0):
    score = read_midi(DATA / "freedoom" / "doom1_D_E1M1.mid")
    tracks = []
    for t in score.tracks:
        if t.is_drum or 32 <= t.program < 40:  # drums and bass out: the band plays them
            continue
        keep = t.notes[t.notes["start_s"] < seconds].copy()
        keep["end_s"] = np.minimum(keep["end_s"], seconds)
        tracks.append(Track(keep, program=t.program, name=t.name))
    path = tmp_path / "song.mid"
    path.write_bytes(midi_bytes(Score(tracks, tempos=score.tempos)))
    return path


def test_accompany_writes_the_song_and_new_parts(tmp_path, capsys):
    song = _short_song(tmp_path)
    out = tmp_path / "out.mid"
    assert cli.main(["accompany", str(song), "--lineup", "drums,bass", "--style", "metal",
                     "--seed", "2", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "metal" in err and "wrote" in err and "seed 2" in err
    original = track_chunks(song.read_bytes())
    assert track_chunks(out.read_bytes())[: len(original)] == original
    added = read_midi(out).tracks[len(read_midi(song).tracks):]
    assert any(t.is_drum for t in added) and any(32 <= t.program < 40 for t in added)


def test_accompany_bad_input_is_one_line(tmp_path, capsys):
    song = _short_song(tmp_path)
    assert cli.main(["accompany", str(song), "--lineup", "drums,kazoo"]) == 2
    assert "unknown instrument 'kazoo'" in capsys.readouterr().err
    assert cli.main(["accompany", str(song), "--model", "piano"]) == 2
    assert "needs a band model" in capsys.readouterr().err
    assert cli.main(["accompany", str(tmp_path / "missing.mid")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert cli.main(["accompany", str(song), "-o", str(song)]) == 2
    assert "would replace it" in capsys.readouterr().err
    assert cli.main(["accompany", str(DATA.parent / "README.md")]) == 2
    assert "not a MIDI file" in capsys.readouterr().err


def _band_song(tmp_path, seconds=10.0):
    score = read_midi(DATA / "freedoom" / "doom1_D_E1M1.mid")
    tracks = []
    for t in score.tracks:
        keep = t.notes[t.notes["start_s"] < seconds].copy()
        keep["end_s"] = np.minimum(keep["end_s"], seconds)
        tracks.append(Track(keep, program=t.program, is_drum=t.is_drum, name=t.name))
    path = tmp_path / "band.mid"
    path.write_bytes(midi_bytes(Score(tracks, tempos=score.tempos)))
    return path


def test_infill_writes_the_song_with_the_span_filled(tmp_path, capsys):
    song = _band_song(tmp_path)
    out = tmp_path / "filled.mid"
    assert cli.main(["infill", str(song), "--bars", "2-3", "--tracks", "bass", "--candidates",
                     "2", "--seed", "4", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "filled bars 2-3" in err and "best of 2" in err and "seed 4" in err
    before, after = read_midi(song), read_midi(out)
    assert len(before.tracks) == len(after.tracks)
    changed = [i for i, (a, b) in enumerate(zip(before.tracks, after.tracks))
               if not np.array_equal(a.notes, b.notes)]
    assert changed == [i for i, t in enumerate(before.tracks) if 32 <= t.program < 40]


def test_infill_bad_input_is_one_line(tmp_path, capsys):
    song = _band_song(tmp_path)
    assert cli.main(["infill", str(song), "--bars", "30-32"]) == 2
    err = capsys.readouterr().err
    assert "past the end of the song" in err and err.count("\n") == 1
    assert cli.main(["infill", str(song), "--bars", "2", "--tracks", "kazoo"]) == 2
    assert "unknown part 'kazoo'" in capsys.readouterr().err
    assert cli.main(["infill", str(song), "--bars", "2", "--tracks", "organ"]) == 2
    assert "no organ track" in capsys.readouterr().err
    assert cli.main(["infill", str(song), "--bars", "2", "--candidates", "0"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_generate_form_writes_every_section(tmp_path, capsys):
    out = tmp_path / "aaba.mid"
    assert cli.main(["generate", "--model", "band", "--form", "AABA", "--bars", "2",
                     "--lineup", "drums,bass", "--tempo", "120", "--randomness", "0.5",
                     "--seed", "3", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "bars 1-2" in err and "bars 7-8" in err and "A again, bar " in err and "new" in err
    import mido

    assert abs(mido.MidiFile(out).length - 16.0) < 0.02  # 8 bars of 2 s at 120 BPM


def test_generate_form_bad_input_is_one_line(tmp_path, capsys):
    out = str(tmp_path / "x.mid")
    for argv, message in ((["--form", "A-B"], "section letters"),
                          (["--form", "AB", "--num", "2"], "drop --num"),
                          (["--form", "AB", "--seconds", "4"], "drop --seconds"),
                          (["--form", "AB", "--bars", "65"], "--bars must be 1..64"),
                          (["--form", "AB", "--randomness", "2"], "randomness must be")):
        assert cli.main(["generate", *argv, "-o", out]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_evaluate_accompaniment_scores_known_parts(tmp_path, capsys):
    import json

    from melodia.midi import make_notes

    chord = make_notes([0.0] * 3, [2.0] * 3, [60, 64, 67], [80] * 3)  # C major, 4 beats at 120
    bass = make_notes([0.0, 0.5, 1.0], [0.5, 1.0, 1.5], [36, 43, 37], [90] * 3)  # C, G, C#
    drums = make_notes([0.0, 0.25, 0.51, 0.8], [0.1] * 4 + np.array([0.0, 0.25, 0.51, 0.8]),
                       [36, 38, 42, 42], [100] * 4)  # 0.8 s is 0.05 s off the 16th grid
    song = tmp_path / "known.mid"
    song.write_bytes(midi_bytes(Score([Track(chord, name="Keys"),
                                       Track(bass, program=33, name="Bass"),
                                       Track(drums, is_drum=True, name="Drums")])))
    (tmp_path / "notes.txt").write_text("not MIDI")
    assert cli.main(["evaluate", "--accompaniment", str(song), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["files"][0]
    assert abs(row["harmonic"] - 2 / 3) < 1e-9  # C and G sound in the chord, C# does not
    assert row["rhythmic"] == 0.75  # three of four drum onsets within 30 ms of a 16th
    assert 0 <= row["broken_harmonic"] < 1
    assert cli.main(["evaluate", "--accompaniment", str(song), "--parts", "keys"]) == 0
    out = capsys.readouterr().out
    assert "mean of 1" in out and "harmonic" in out
    assert cli.main(["evaluate", "--accompaniment", str(tmp_path / "notes.txt")]) == 2
    err = capsys.readouterr().err
    assert "skipped" in err and "no file had both" in err
