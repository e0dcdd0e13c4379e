import json
import shutil

import pytest

from melodia import cli
from melodia.midi import read_midi
from tests.conftest import DATA, MALFORMED


@pytest.mark.parametrize("command", [None] + cli._COMMANDS)
def test_every_help_works(command, capsys):
    argv = ([command] if command else []) + ["--help"]
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 0
    assert "usage: melodia" in capsys.readouterr().out


def test_encode_decode_round_trip(tmp_path):
    src = DATA / "freedoom" / "doom1_D_E1M1.mid"
    tokens = tmp_path / "tokens.json"
    assert cli.main(["encode", str(src), "-o", str(tokens), "--encoding", "band"]) == 0
    payload = json.loads(tokens.read_text())
    assert payload["encoding"] == "band" and len(payload["ids"]) > 1000
    out = tmp_path / "back.mid"
    assert cli.main(["decode", str(tokens), "-o", str(out)]) == 0
    assert len(read_midi(out).tracks) == len({(t.program, t.is_drum)
                                              for t in read_midi(src).tracks})


def test_encode_prints_events(capsys):
    assert cli.main(["encode", str(DATA / "chorales" / "bach__bwv1.6.mxl.mid")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("VELOCITY") and any(line.startswith("NOTE_ON") for line in out)


def test_decode_plain_integer_list(tmp_path):
    (tmp_path / "ids.txt").write_text("60 300 188")
    assert cli.main(["decode", str(tmp_path / "ids.txt"), "-o", str(tmp_path / "x.mid")]) == 0
    assert read_midi(tmp_path / "x.mid").note_count == 1


def test_bad_input_gives_error_not_traceback(tmp_path, capsys):
    assert cli.main(["encode", str(MALFORMED / "truncated.mid")]) == 2
    assert "truncated" in capsys.readouterr().err
    (tmp_path / "ids.txt").write_text("[1, 2, 999]")
    assert cli.main(["decode", str(tmp_path / "ids.txt"), "-o", str(tmp_path / "x.mid")]) == 2
    assert "outside the vocabulary" in capsys.readouterr().err


def test_prepare_command(tmp_path, capsys):
    assert cli.main(["prepare", str(DATA / "freedoom"), "-o", str(tmp_path / "ds"),
                     "--encoding", "band", "--workers", "2", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "encoded 66 file(s)" in err and "1 duplicate(s)" in err  # Freedoom repeats a track
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["encoding"]["name"] == "band" and manifest["vocab_size"] == 549


def test_prepare_labels_from_folders(tmp_path, capsys):
    src = tmp_path / "src"
    for style, names in (("metal", ["doom1_D_E1M1.mid", "doom1_D_E1M2.mid"]),
                         ("chorale", ["bach__bwv1.6.mxl.mid"])):
        (src / style).mkdir(parents=True)
        folder = DATA / ("freedoom" if style == "metal" else "chorales")
        for name in names:
            shutil.copy(folder / name, src / style / name)
    assert cli.main(["prepare", str(src), "-o", str(tmp_path / "ds"), "--encoding", "band",
                     "--labels-from-folders", "--workers", "1", "--quiet"]) == 0
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["styles"] == ["chorale", "metal"]
    assert sorted(f["style"] for f in manifest["files"]) == ["chorale", "metal", "metal"]


def test_prepare_scores_with_humanize_and_max_files(tmp_path, capsys):
    from tests.corpus.test_scores import TWO_TUNES

    (tmp_path / "two.abc").write_text(TWO_TUNES)
    args = ["prepare", str(tmp_path / "two.abc"), "music21:bach/bwv66.6", "--workers", "1",
            "--humanize", "0.01", "--humanize-seed", "3", "--quiet"]
    assert cli.main(args + ["-o", str(tmp_path / "a"), "--max-files", "2", "--no-cache"]) == 0
    assert "encoded 2 file(s)" in capsys.readouterr().err
    assert cli.main(args + ["-o", str(tmp_path / "b"), "--cache-dir", str(tmp_path / "c")]) == 0
    assert "scores read: 3 (0 from the cache)" in capsys.readouterr().err
    a, b = (json.loads((tmp_path / d / "manifest.json").read_text())["files"] for d in "ab")
    assert [f["sha1"] for f in a] == [f["sha1"] for f in b[:2]] and b[2]["source"]
    assert any((tmp_path / "c").rglob("*.npz"))
    assert cli.main(["prepare", "music21:", "-o", str(tmp_path / "d")]) == 2
    assert "music21:" in capsys.readouterr().err
