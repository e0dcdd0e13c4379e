"""Rendering speed: melodia.output.audio against the ``fluidsynth`` program, same file and SoundFont.

Usage::

    python tests/benchmarks/bench_render.py [FILE.mid] [--repeats 5] [--soundfont SF2]

FILE defaults to MAESTRO performance 1 (~5.8 min of piano; fetch it with
``bash data/fetch_maestro.sh``). Three ways are timed, interleaved, each writing a 44.1 kHz WAV:
``melodia.output.audio()`` called in this process (MIDI read, synthesis, tail, WAV), the ``melodia
render`` command in a fresh Python (imports included), and ``fluidsynth -ni -q -F out.wav -r
44100 SF2 FILE`` (FluidSynth's fast file renderer). The goal is melodia within 10% of fluidsynth.
Prints medians of wall-clock and CPU seconds, the real-time factor (audio seconds rendered per
wall second) and the ratios to fluidsynth. On a busy machine trust the CPU ratio more.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

from melodia.output.audio import render
from melodia.output.synth import find_soundfont

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MIDI = ROOT / "data" / "external" / "maestro" / "maestro_1.mid"


def _wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as f:
        return f.getnframes() / f.getframerate()


def _cpu_s() -> float:
    """CPU seconds (user + system) used so far by this process and its finished children."""
    usage = (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    return sum(u.ru_utime + u.ru_stime for u in usage)


def _time(run) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one call (CPU time is steadier on a shared machine)."""
    wall, cpu = time.perf_counter(), _cpu_s()
    run()
    return time.perf_counter() - wall, _cpu_s() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("midi", type=Path, nargs="?", default=DEFAULT_MIDI)
    parser.add_argument("--soundfont", type=Path, default=None, help="default: melodia's choice")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sample-rate", type=int, default=44100)
    args = parser.parse_args(argv)
    if not args.midi.exists():
        parser.error(f"{args.midi} not found (run bash data/fetch_maestro.sh, or pass a file)")
    fluidsynth = shutil.which("fluidsynth")
    if fluidsynth is None:
        parser.error("the fluidsynth program is not installed (sudo apt-get install fluidsynth)")
    sf2, rate = find_soundfont(args.soundfont), args.sample_rate
    tmp = Path(tempfile.mkdtemp(prefix="bench_render_"))
    runs = {
        "melodia.output.audio()": lambda: render(args.midi, tmp / "api.wav", soundfont=sf2,
                                           sample_rate=rate),
        "melodia render (CLI)": lambda: subprocess.run(
            [sys.executable, "-m", "melodia.cli", "render", str(args.midi), "-o",
             str(tmp / "cli.wav"), "--soundfont", str(sf2), "--sample-rate", str(rate)],
            check=True, capture_output=True),
        "fluidsynth -F": lambda: subprocess.run(
            [fluidsynth, "-ni", "-q", "-F", str(tmp / "fs.wav"), "-r", str(rate), str(sf2),
             str(args.midi)], check=True, capture_output=True),
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for _ in range(args.repeats):  # interleaved, so load changes hit all three alike
        for name, run in runs.items():
            times[name].append(_time(run))
    outputs = dict(zip(runs, ("api.wav", "cli.wav", "fs.wav")))
    base_wall = statistics.median(w for w, _ in times["fluidsynth -F"])
    base_cpu = statistics.median(c for _, c in times["fluidsynth -F"])
    print(f"{args.midi.name}, SoundFont {sf2.name}, {rate} Hz, medians of {args.repeats} runs; "
          "ratio = time / fluidsynth's")
    for name, samples in times.items():
        audio_s = _wav_seconds(tmp / outputs[name])
        wall = statistics.median(w for w, _ in samples)
        cpu = statistics.median(c for _, c in samples)
        print(f"  {name:22s} audio {audio_s:5.1f} s | wall {wall:5.2f} s "
              f"({audio_s / wall:5.1f}x real time, ratio {wall / base_wall:.3f}) | "
              f"CPU {cpu:5.2f} s (ratio {cpu / base_cpu:.3f})")
    shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
