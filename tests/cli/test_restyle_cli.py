"""``melodia restyle`` on a real file: the melody kept and swung, the new band written; bad
requests refused in one line."""

import numpy as np

from melodia import cli
from melodia.evaluate.stats import grid_positions
from melodia.midi import midi_bytes, read_midi
from tests.generation.test_restyle import _chord_song


def test_restyle_writes_the_melody_swung_and_a_new_band(tmp_path, capsys):
    song = tmp_path / "song.mid"
    song.write_bytes(midi_bytes(_chord_song()))
    out = tmp_path / "out.mid"
    assert cli.main(["restyle", str(song), "--style", "jazz", "--lineup", "drums,bass",
                     "--lead", "auto", "--seed", "3", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "kept Melody (Flute) (swing feel: 32 notes moved)" in err, err
    assert "band: swing" in err and "seed 3" in err and f"wrote {out}" in err
    back = read_midi(out)
    melody = back.tracks[0]
    assert melody.name == "Melody" and melody.program == 65  # alto sax: swing's usual lead
    assert list(melody.notes["pitch"]) == [72] * 64
    where = grid_positions(melody.notes["start_s"], back.tempos, 1) % 1
    np.testing.assert_allclose(where, np.tile([0.0, 2 / 3], 32), atol=0.01)  # swung eighths
    new = back.tracks[1:]
    assert sorted(t.is_drum for t in new) == [False, True]
    assert all(len(t.notes) > 10 for t in new)
    assert not any(t.name == "Piano" for t in back.tracks)  # the old accompaniment is gone


def test_restyle_bad_requests_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the default output would go
    song = tmp_path / "song.mid"
    song.write_bytes(midi_bytes(_chord_song()))
    for argv, said in ([[], "needs a --style"],
                       [["--style", "hevy metl"], "did you mean metal"],
                       [["--style", "rock", "--lineup", "drums"], "no pitched part"],
                       [["--style", "rock", "--keep", "#7"], "#1..#2"],
                       [["--style", "rock", "--feel", "shuffle"], "invalid choice"],
                       [["--style", "rock", "--lead", "kazoo"], "--lead"]):
        assert cli.main(["restyle", str(song), *argv]) == 2, argv
        err = capsys.readouterr().err
        assert said in err and err.count("\n") == 1, (argv, err)
    assert not list(tmp_path.glob("*restyled*"))  # nothing written
