"""Every user mistake at the command line is one line on stderr and exit status 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from melodia import cli
from tests.conftest import DATA

MIDI = DATA / "chorales" / "bach__bwv1.6.mxl.mid"
ROOT = Path(__file__).resolve().parents[2]


def one_error_line(argv, capsys, command):
    """Run ``melodia argv`` and return its one stderr line, checking exit status 2."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as info:  # argparse refusals
        code = info.code
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"melodia {command}: error: "), err
    return lines[0]


def blocked_outputs(tmp_path, name):
    """Paths no one can write, root included: under /proc, and below a file."""
    (tmp_path / "afile").write_text("")
    return [Path("/proc") / name, tmp_path / "afile" / name]


@pytest.mark.parametrize("command,suffix", [("encode", ".json"), ("render", ".wav"),
                                            ("plot", ".png")])
def test_unwritable_output_is_one_line(command, suffix, tmp_path, capsys):
    for out in blocked_outputs(tmp_path, "x" + suffix):
        line = one_error_line([command, MIDI, "-o", out], capsys, command)
        assert str(out) in line


def test_output_that_is_a_folder_is_one_line(tmp_path, capsys):
    assert "is a folder" in one_error_line(["encode", MIDI, "-o", tmp_path], capsys, "encode")


def test_generate_and_prepare_unwritable_output(tmp_path, capsys):
    for out in blocked_outputs(tmp_path, "x.mid"):
        one_error_line(["generate", "--seconds", "1", "-o", out], capsys, "generate")
    for out in blocked_outputs(tmp_path, "ds"):
        one_error_line(["prepare", MIDI, "-o", out], capsys, "prepare")
    one_error_line(["prepare", MIDI, "-o", tmp_path / "afile"], capsys, "prepare")


def test_missing_output_folders_are_created(tmp_path):
    out = tmp_path / "new" / "sub" / "tokens.json"
    assert cli.main(["encode", str(MIDI), "-o", str(out)]) == 0 and out.is_file()
    roll = tmp_path / "more" / "roll.png"
    assert cli.main(["plot", str(MIDI), "-o", str(roll)]) == 0 and roll.is_file()


def test_render_permission_error_is_not_hidden(tmp_path):
    """wave.open on a path it cannot create used to raise AttributeError from __del__."""
    import numpy as np

    from melodia.output.audio import write_audio

    with pytest.raises(OSError):
        write_audio(np.zeros((10, 2), np.float32), "/proc/x.wav", 44100)


def test_render_refuses_to_overwrite_its_input(tmp_path, capsys):
    midi = tmp_path / "in.mid"
    midi.write_bytes(MIDI.read_bytes())
    assert "input" in one_error_line(["render", midi, "-o", midi], capsys, "render")
    assert midi.read_bytes() == MIDI.read_bytes()


@pytest.mark.parametrize("flag,value", [
    ("--seconds", "nan"), ("--seconds", "inf"), ("--seconds", "-1"), ("--seconds", "1e9"),
    ("--temperature", "nan"), ("--temperature", "inf"), ("--temperature", "-1"),
    ("--noise", "nan"), ("--noise", "inf"), ("--top-p", "0"), ("--top-p", "2"),
    ("--density", "nan"), ("--num", "0"), ("--events", "-5"),
])
def test_generate_refuses_bad_numbers(flag, value, tmp_path, capsys):
    line = one_error_line(["generate", flag, value, "-o", tmp_path / "x.mid"], capsys,
                          "generate")
    assert flag in line
    assert not (tmp_path / "x.mid").exists()


@pytest.mark.parametrize("flag,value", [("--workers", "0"), ("--valid-fraction", "2"),
                                        ("--test-fraction", "-1"), ("--workers", "x")])
def test_prepare_refuses_bad_numbers(flag, value, tmp_path, capsys):
    assert flag in one_error_line(["prepare", MIDI, "-o", tmp_path / "ds", flag, value],
                                  capsys, "prepare")


@pytest.mark.parametrize("content", [b"MThd\x00\x00\x00\x06\xff\xfe\x80", b"[60, Infinity]",
                                     b"[NaN]", b"[60, 1.5]", b'[60, "x"]', b"[60, true]",
                                     b'{"ids": [1e400]}', b'{"ids": 5}', b"60 x 61"])
def test_decode_refuses_bad_ids(content, tmp_path, capsys):
    (tmp_path / "ids").write_bytes(content)
    line = one_error_line(["decode", tmp_path / "ids", "-o", tmp_path / "x.mid"], capsys,
                          "decode")
    assert str(tmp_path / "ids") in line


def test_encode_into_a_closed_pipe_exits_quietly():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "melodia.cli", "encode", str(MIDI)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("melodia ") and out.split()[1][0].isdigit()


def test_generate_audio_suffix_writes_midi_and_audio(tmp_path, capsys):
    pytest.importorskip("fluidsynth")
    out = tmp_path / "x.wav"
    assert cli.main(["generate", "--seconds", "1", "--seed", "1", "-o", str(out)]) == 0
    assert (tmp_path / "x.mid").is_file() and out.is_file()


def test_evaluate_takes_shipped_names_and_auto_device(tmp_path, capsys):
    parser = cli.build_parser()
    assert parser.parse_args(["evaluate", "piano", "ds"]).device == "auto"
    assert cli.main(["prepare", str(MIDI), "-o", str(tmp_path / "ds"), "--workers", "1",
                     "--quiet", "--test-fraction", "0.99", "--valid-fraction", "0"]) == 0
    capsys.readouterr()
    assert cli.main(["evaluate", "piano", str(tmp_path / "ds"), "--baselines", "1",
                     "--max-events", "200", "--quiet", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checkpoint"].endswith("piano.pt")


def test_prepare_prints_split_counts_and_warns(tmp_path, capsys):
    assert cli.main(["prepare", str(MIDI), "-o", str(tmp_path / "ds"), "--workers", "1",
                     "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "split: 1 train, 0 validation, 0 test file(s)" in err
    assert "warning: no validation or test files" in err


def test_train_print_config_is_a_full_toml(capsys):
    import tomllib

    assert cli.main(["train", "--print-config", "--batch-size", "8", "--layers", "2"]) == 0
    config = tomllib.loads(capsys.readouterr().out)
    assert config["batch_size"] == 8 and config["model"]["num_layers"] == 2
    assert config["data"] == "DATASET" and "lr" in config and "hidden_size" in config["model"]
    assert cli.main(["train", "some-dataset"]) == 2  # a real run still needs -o


def test_generate_says_where_the_primer_ends(tmp_path, capsys):
    out = tmp_path / "p.mid"
    assert cli.main(["generate", "--primer", "60,64,67", "--seconds", "1", "--seed", "1",
                 "-o", str(out)]) == 0
    assert "the primer plays for the first 0.00 s" in capsys.readouterr().err


@pytest.mark.parametrize("missing", ["libfluidsynth", "pyfluidsynth"])
def test_generate_before_fluidsynth_is_installed_writes_midi_and_one_line(
        missing, tmp_path, capsys, monkeypatch):
    """README's quick start: MIDI (and piano roll) come before apt installs FluidSynth."""
    import importlib

    render = importlib.import_module("melodia.output.audio")  # the module (melodia.render is a function)
    synth = importlib.import_module("melodia.output.synth")

    def no_fluidsynth():
        raise render.RenderError(synth.install_hint(missing))

    monkeypatch.setattr(render, "import_fluidsynth", no_fluidsynth)
    mid, wav, png = tmp_path / "a.mid", tmp_path / "a.wav", tmp_path / "a.png"
    code = cli.main([str(a) for a in ["generate", "--seconds", "4", "--seed", "1", "-o", mid,
                                      "--audio", wav, "--plot", png]])
    err = capsys.readouterr().err
    errors = [x for x in err.splitlines() if "error" in x]
    assert code == 2 and "Traceback" not in err and len(errors) == 1, err
    line = errors[0]
    assert line.startswith("melodia generate: error: ") and err.strip().endswith(line)
    import mido

    notes = [m for t in mido.MidiFile(mid).tracks for m in t if m.type == "note_on"]
    assert notes and png.stat().st_size > 100 and not wav.exists()  # the MIDI is real music
    assert "no audio" in line and f"melodia render {mid} -o {wav}" in line
    assert ("apt-get install libfluidsynth3" in line
            and (missing == "libfluidsynth" or "pip install 'melodia[audio]'" in line))


# ------------------------------------------------- what melodia did not write is never lost


def test_generate_never_replaces_its_primer_unless_forced(tmp_path, capsys):
    primer = tmp_path / "p.mid"
    primer.write_bytes(MIDI.read_bytes())
    line = one_error_line(["generate", "--primer", primer, "-o", primer, "--seconds", "1"],
                          capsys, "generate")
    assert "is the primer" in line and "--force" in line
    assert primer.read_bytes() == MIDI.read_bytes()
    assert cli.main(["generate", "--primer", str(primer), "-o", str(primer), "--seconds", "1",
                     "--seed", "1", "--force"]) == 0
    assert primer.read_bytes() != MIDI.read_bytes()


@pytest.mark.parametrize("command", ["generate", "decode"])
def test_a_midi_output_must_be_named_as_midi(command, tmp_path, capsys):
    tokens = tmp_path / "t.json"
    tokens.write_text(json.dumps({"encoding": "piano", "ids": [60, 300, 188]}))
    argv = ["generate", "--seconds", "1"] if command == "generate" else ["decode", tokens]
    line = one_error_line([*argv, "-o", tmp_path / "song.mp3"], capsys, command)
    assert "song.mp3" in line and ".mid" in line
    assert not (tmp_path / "song.mp3").exists()


def test_export_keeps_a_projects_own_readme_and_config(tmp_path, capsys):
    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("# my project\n")
    (project / "config.json").write_text('{"name": "my app"}\n')
    line = one_error_line(["export", "piano", "-o", project], capsys, "export")
    assert "melodia did not write" in line and "--force" in line
    assert (project / "README.md").read_text() == "# my project\n"
    assert not (project / "model.safetensors").exists()
    assert cli.main(["export", "piano", "-o", str(tmp_path / "ours")]) == 0
    assert cli.main(["export", "piano", "-o", str(tmp_path / "ours")]) == 0  # its own: replaced
    assert cli.main(["export", "piano", "-o", str(project), "--force"]) == 0
    assert (project / "README.md").read_text().startswith("# melodia piano model")


# ---------------------------------------------------- nonsense refused, with the file named


def test_devices_pipes_and_huge_files_are_refused_before_reading(tmp_path, capsys):
    line = one_error_line(["encode", "/dev/zero", "-o", tmp_path / "z.json"], capsys, "encode")
    assert "/dev/zero" in line and "not a regular file" in line
    big = tmp_path / "big.mid"
    with big.open("wb") as f:
        f.truncate(65 * 2 ** 20)  # sparse: 65 MiB on paper
    assert "more than any MIDI file" in one_error_line(["encode", big], capsys, "encode")
    fifo = tmp_path / "model.pt"
    os.mkfifo(fifo)
    line = one_error_line(["generate", "--model", fifo], capsys, "generate")
    assert "not a regular file" in line and "no such" not in line


def test_a_file_whose_notes_cannot_be_read_says_so(tmp_path, capsys):
    import mido

    mid = mido.MidiFile()
    mid.tracks.append(mido.MidiTrack([mido.Message("note_on", note=60, velocity=80, time=0),
                                      mido.Message("note_on", note=64, velocity=80, time=10)]))
    path = tmp_path / "no-offs.mid"
    mid.save(path)
    line = one_error_line(["encode", path, "-o", tmp_path / "t.json"], capsys, "encode")
    assert "strikes 2 notes but none could be read" in line


@pytest.mark.parametrize("argv, message", [
    (["--primer", MIDI], "stream takes no --primer; use --listen to answer a player"),
    (["--accompany", "Keystation"], "--accompany plays a band: add --model band (and --lineup)"),
    (["--seconds", "2", "--bars", "2"], "give --seconds or --bars, not both"),
    ([], "no JACK server is running: start one (jackd -d dummy"),
])
def test_stream_says_what_is_wrong_with_its_options_before_the_port(argv, message, capsys,
                                                                    monkeypatch):
    """``stream`` opens its port while torch imports (melodia.live.start), before it reads its
    options into a config; a mistake in the options is still what it says, and the port's own
    error only when the options are fine."""
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "melodia-no-such-server")
    line = one_error_line(["stream", "--api", "jack", *argv], capsys, "stream")
    assert message in line, line
