"""A core install (no extras) generates, encodes and decodes; each part that needs an extra says,
in one line and exit status 2, which one to install."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATA

ROOT = Path(__file__).resolve().parents[1]
MIDI = DATA / "chorales" / "bach__bwv1.6.mxl.mid"
#: The optional packages of pyproject's extras: audio, plot, ports, eval, studio.
OPTIONAL = ("matplotlib", "fluidsynth", "soundfile", "rtmidi", "scipy", "sklearn", "starlette",
            "uvicorn")
#: Runs ``melodia ARGS`` with the optional packages unimportable, as when they are not installed.
#: (None in sys.modules: ``import x`` raises ModuleNotFoundError, importlib's find_spec says
#: "not there", which is what torch probes with.)
WRAPPER = ("import sys\n"
           f"for name in {OPTIONAL!r}:\n"
           "    sys.modules[name] = None\n"
           "from melodia.cli import main\n"
           "code = main(sys.argv[1:])\n"
           f"assert not any(sys.modules.get(n) for n in {OPTIONAL!r})\n"
           "sys.exit(code)\n")


def core_only(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WRAPPER, *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def one_error(run: subprocess.CompletedProcess, command: str) -> str:
    errors = [line for line in run.stderr.splitlines() if "error" in line.lower()]
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert len(errors) == 1 and errors[0].startswith(f"melodia {command}: error: "), run.stderr
    return errors[0]


def test_generate_encode_decode_need_no_extra(tmp_path):
    run = core_only("generate", "--seconds", "2", "--seed", "1", "-o", "a.mid", cwd=tmp_path)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert (tmp_path / "a.mid").stat().st_size > 100
    run = core_only("encode", "a.mid", "-o", "a.json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    run = core_only("decode", "a.json", "-o", "b.mid", cwd=tmp_path)
    assert run.returncode == 0 and (tmp_path / "b.mid").stat().st_size > 100, run.stderr


@pytest.mark.parametrize("flag,suffix,extra", [("--plot", ".png", "plot"),
                                               ("--audio", ".wav", "audio")])
def test_generate_writes_midi_then_names_the_extra(tmp_path, flag, suffix, extra):
    run = core_only("generate", "--seconds", "2", "--seed", "1", "-o", "a.mid", flag, "a" + suffix,
                    cwd=tmp_path)
    line = one_error(run, "generate")
    assert (tmp_path / "a.mid").stat().st_size > 100 and not (tmp_path / ("a" + suffix)).exists()
    assert f"pip install 'melodia[{extra}]'" in line


@pytest.mark.parametrize("args,command,extra", [
    (["render", MIDI, "-o", "x.wav"], "render", "audio"),
    (["plot", MIDI, "-o", "x.png"], "plot", "plot"),
    (["ports"], "ports", "ports"),
    (["evaluate", "--generated", DATA / "chorales", "--reference", DATA / "chorales"],
     "evaluate", "eval"),
])
def test_each_extra_is_named_in_one_line(tmp_path, args, command, extra):
    run = core_only(*args, cwd=tmp_path)
    assert f"pip install 'melodia[{extra}]'" in one_error(run, command)
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_studio_names_its_extra(tmp_path):
    line = one_error(core_only("studio", "--no-browser", cwd=tmp_path), "studio")
    assert "pip install 'melodia[studio]'" in line
    assert not (tmp_path / "melodia-studio").exists()  # nothing written before it can serve
