#!/usr/bin/env python3
"""Build the labelled band corpus: OUT/<style>/*.mid, OUT/splits.csv, OUT/SHA1SUMS.

* ``metal``: the 67 Freedoom tracks committed in ``data/midi/freedoom`` (BSD-style licence).
* ``bossa``, ``swing``, ``rock``, ``funk``, ``latin``, ``country``: synthetic accompaniment made
  with MMA (Debian package ``mma``, GPL-2+; not committed): for each file a small ``.mma`` song is
  written (intro, 4-bar phrases of a style-typical chord progression with the groove's variants,
  fills and ending) and MMA renders it. Every choice comes from ``random.Random(f"{seed}:{style}:
  {i}")`` and MMA's own randomness is pinned with ``RndSeed``, so the same MMA version gives the
  same bytes (checked against ``SHA1SUMS``).

Hold-out: per style, files are ranked by the SHA-1 of ``"<style>/<name>"`` (a name, not the
bytes, so a file keeps its split across MMA versions); the first 10% (at least 1) are ``test``,
the next 5% (at least 1) ``validation``. ``splits.csv`` records it and ``melodia prepare OUT``
honours it (see ``melodia.corpus.preparation.maestro_splits``).

Usage (needs ``apt-get install mma``; about a minute on 2 cores)::

    python3 data/band/make_corpus.py runs/band_src
    melodia prepare runs/band_src --encoding band --labels-from-folders -o runs/band
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from random import Random

HERE = Path(__file__).resolve().parent
FREEDOOM = HERE.parent / "midi" / "freedoom"
MMA_LIB = Path("/usr/share/mma/lib")
NAMES = ["C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B"]
DEGREES = {"I": 0, "II": 2, "III": 4, "IV": 5, "V": 7, "VI": 9, "VII": 11}
ROMAN = re.compile(r"^([b#]?)(VII|VI|V|IV|III|II|I)(.*)$")


@dataclass(frozen=True)
class Family:
    """One MMA groove file: its library path and a style-typical tempo range (quarter notes)."""

    lib: str  # e.g. "stdlib/bossanova"
    tempo: tuple[int, int]


@dataclass(frozen=True)
class Style:
    families: tuple[Family, ...]
    keys: tuple[str, ...]  # tonic names
    phrases: tuple[str, ...]  # bars split by " ", chords in a bar by ","
    final: tuple[str, str] = ("I", "Im")  # closing chord in a major and a minor key


STYLES: dict[str, Style] = {
    "bossa": Style(
        (Family("stdlib/bossanova", (118, 150)),),
        ("C", "D", "Eb", "F", "G", "Ab", "A", "Bb"),
        ("IIm7 V7 Imaj7 Imaj7", "Imaj7 II7 IIm7 bII7", "I6 bIIdim7 IIm7 V7",
         "IIIm7 VI7 IIm7 V7", "IVmaj7 IVm6 IIIm7 VI7b9", "Imaj7 VIm7 IIm7,V7 I6",
         "VIIm7b5 III7b9 VIm7 VIm7", "IIm7b5 V7b9 Im6 Im6", "bVIImaj7 bVIImaj7 bVIm7 bII7",
         "Imaj9 Imaj9 IVmaj7 IVmaj7"), ("I6", "Im6")),
    "swing": Style(
        (Family("stdlib/swing", (120, 190)), Family("stdlib/jazzguitar", (100, 160)),
         Family("stdlib/easyswing", (90, 130)), Family("stdlib/fastswing", (200, 250)),
         Family("stdlib/jazzcombo", (110, 170)), Family("stdlib/bebop", (120, 160))),
        ("F", "Bb", "Eb", "C", "G", "Ab", "D"),
        ("Imaj7 VIm7 IIm7 V7", "IIIm7 VI7 IIm7 V7", "I7 I7 IV7 #IVdim7", "I6 V7 I6 I6",
         "IIm7 V7 Imaj7 VI7b9", "IVmaj7 IVm7 IIIm7 VI7", "IIm7b5 V7b9 Im6 Im6",
         "I6,VI7 IIm7,V7 IIIm7,VI7 IIm7,V7", "Vm7 I7 IVmaj7 IVmaj7", "IIm7 bII7 Imaj7 Imaj7",
         "I7 IV7 I7 I7 IV7 #IVdim7 I7 VI7 IIm7 V7 I7,VI7 IIm7,V7"), ("I6", "Im6")),
    "rock": Style(
        (Family("stdlib/50srock", (140, 175)), Family("stdlib/60srock", (115, 150)),
         Family("stdlib/softrock", (80, 110)), Family("stdlib/basicrock", (100, 140)),
         Family("stdlib/8beat", (100, 130)), Family("stdlib/folkrock", (100, 130))),
        ("E", "A", "D", "G", "C"),
        ("I IV V IV", "I bVII IV I", "I V VIm IV", "VIm IV I V", "I I IV IV", "I bIII IV I",
         "IV V I I", "I5 bVII5 IV5 I5", "Isus4 I Isus4 I", "I Iadd9 IV IV",
         "I I I I IV IV I I V IV I V")),
    "funk": Style(
        (Family("stdlib/bvfunk", (92, 115)), Family("stdlib/dsoul", (85, 110)),
         Family("stdlib/rb", (70, 100)), Family("casio/funk1", (95, 118)),
         Family("casio/funk2", (95, 118))),
        ("E", "A", "D", "G", "C", "F", "Bb"),
        ("Im7 Im7 IV7 IV7", "I7#9 I7#9 I7#9 IV9", "Im9 Im9 bVII9 bVII9", "I9 I9 I9 I9",
         "IIm7 V9 IIm7 V9", "Im7,IV7 Im7,IV7 Im7,IV7 bVII7,IV7", "bVImaj7 V7#9 Im7 Im7",
         "I13 I13 IV9 IV9", "Im11 Im11 Im11 bIIImaj7,IV7"), ("I9", "Im9")),
    "latin": Style(
        (Family("stdlib/salsa", (170, 205)), Family("stdlib/rhumba", (100, 130)),
         Family("stdlib/mambo", (170, 200)), Family("stdlib/chacha", (110, 130)),
         Family("stdlib/son", (90, 120)), Family("stdlib/merengue", (120, 160))),
        ("A", "D", "E", "G", "C", "F", "B"),
        ("Im IVm V7 Im", "Im bVI V7 V7", "IIm7b5 V7b9 Im Im", "Im bVII bVI V7",
         "I IV V7 IV", "Im7 IV7 Im7 IV7", "IVm7 bVII7 bIIImaj7 bVImaj7", "Im6 Im6 V7 V7",
         "Im Im7 IVm6 V7b9")),
    "country": Style(
        (Family("stdlib/countryswing", (140, 180)), Family("stdlib/bluegrass", (160, 220)),
         Family("stdlib/slowcountry", (70, 95)), Family("stdlib/westernswing", (150, 190)),
         Family("stdlib/hillcountry", (100, 140))),
        ("G", "D", "A", "C", "E", "F"),
        ("I I IV I", "I IV V7 I", "I VIm IV V7", "I II7 V7 I", "I I7 IV IVm", "I V7 V7 I",
         "IV IV I I", "V7 V7 I I", "I I IV I I I V7 V7", "I III7 IV I")),
}
DYNAMICS = ("mp", "mf", "mf", "f")


def chord(symbol: str, key: str) -> str:
    """A roman-numeral chord (``bVII7``, ``IIm7b5``) in ``key``: ``chord("IIm7", "F") == "Gm7"``."""
    match = ROMAN.match(symbol)
    if not match:
        raise ValueError(f"not a roman-numeral chord: {symbol}")
    accidental, numeral, quality = match.groups()
    shift = {"b": -1, "#": 1, "": 0}[accidental]
    return NAMES[(NAMES.index(key) + DEGREES[numeral] + shift) % 12] + quality


def grooves(lib: str) -> dict[str, list[str]]:
    """The grooves an MMA library file defines, as main / intro / end / fill variants."""
    names = re.findall(r"(?im)^\s*defgroove\s+(\S+)", (MMA_LIB / f"{lib}.mma").read_text())
    kinds: dict[str, list[str]] = {"main": [], "intro": [], "end": [], "fill": []}
    for name in names:
        kind = next((k for k in ("intro", "end", "fill") if k in name.lower()), "main")
        kinds[kind].append(name)
    return kinds


def song(style: str, i: int, seed: int) -> tuple[str, str]:
    """File stem and MMA source of song ``i`` of ``style`` (deterministic in its arguments)."""
    rng = Random(f"{seed}:{style}:{i}")
    spec = STYLES[style]
    family = rng.choice(spec.families)
    kinds = grooves(family.lib)
    key = rng.choice(spec.keys)
    tempo = rng.randint(*family.tempo)
    bar_s = 4 * 60 / tempo
    body_bars = max(8, round(rng.uniform(30, 85) / bar_s) - 6)
    main = kinds["main"][0]
    lines = [f"// {style} {i}: {family.lib}, key {key}", f"RndSeed {seed * 100003 + i}",
             f"Tempo {tempo}"]
    bars: list[str] = []
    if kinds["intro"]:
        lines.append(f"Groove {rng.choice(kinds['intro'])}")
        bars += [chord(c, key) for c in rng.choice(spec.phrases).split()[:4]]
        lines += [f"{n + 1} {bar.replace(',', ' ')}" for n, bar in enumerate(bars)]
    phrases = rng.sample(spec.phrases, min(3, len(spec.phrases)))  # a song uses a few phrases
    while len(bars) < body_bars + (4 if kinds["intro"] else 0):
        groove = main if rng.random() < 0.4 else rng.choice(kinds["main"])
        lines += [f"Groove {groove}", f"Volume {rng.choice(DYNAMICS)}"]
        section = [b for _ in range(2) for b in rng.choice(phrases).split()]
        if kinds["fill"] and rng.random() < 0.5:
            lines += [f"{len(bars) + n + 1} {' '.join(chord(c, key) for c in b.split(','))}"
                      for n, b in enumerate(section[:-1])]
            lines.append(f"Groove {rng.choice(kinds['fill'])}")
            lines.append(f"{len(bars) + len(section)} "
                         + " ".join(chord(c, key) for c in section[-1].split(",")))
        else:
            lines += [f"{len(bars) + n + 1} {' '.join(chord(c, key) for c in b.split(','))}"
                      for n, b in enumerate(section)]
        bars += section
    minor = any(re.match(r"Im(?!aj)", c) for p in phrases for c in re.split("[ ,]", p))
    tonic = spec.final[minor]
    if kinds["end"]:
        lines.append(f"Groove {rng.choice(kinds['end'])}")
    lines += [f"{len(bars) + 1} {chord(tonic, key)}", f"{len(bars) + 2} {chord(tonic, key)}"]
    stem = f"{style}_{i:03d}_{family.lib.split('/')[-1]}_{key}_{tempo}"
    return stem, "\n".join(lines) + "\n"


def render(job: tuple[str, str, Path, Path]) -> Path:
    stem, source, work, out = job
    (work / f"{stem}.mma").write_text(source)
    target = out / f"{stem}.mid"
    run = subprocess.run(["mma", "-f", str(target), f"{stem}.mma"], cwd=work,
                         capture_output=True, text=True)
    if run.returncode != 0 or not target.is_file():
        raise RuntimeError(f"mma failed on {stem}:\n{run.stdout}\n{run.stderr}")
    return target


def splits(out: Path, test: float = 0.10, valid: float = 0.05) -> list[tuple[str, str]]:
    """``(relative path, split)`` of every file: per style, ranked by the SHA-1 of the path."""
    rows = []
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        names = sorted((f"{folder.name}/{p.name}" for p in folder.glob("*.mid")),
                       key=lambda n: hashlib.sha1(n.encode()).hexdigest())
        n_test, n_valid = max(1, round(test * len(names))), max(1, round(valid * len(names)))
        rows += [(n, "test" if k < n_test else "validation" if k < n_test + n_valid
                  else "train") for k, n in enumerate(names)]
    return sorted(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="output folder (made; must be empty or absent)")
    parser.add_argument("--files-per-style", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--freedoom", type=Path, default=FREEDOOM)
    args = parser.parse_args(argv)
    if shutil.which("mma") is None:
        sys.exit("mma not found: apt-get install mma (then `mma -G` once, as root)")
    if not any(MMA_LIB.glob("*/.mmaDB")):
        subprocess.run(["mma", "-G"], check=True, capture_output=True)
    args.out = args.out.resolve()  # mma runs in a temporary folder: paths must be absolute
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"{args.out} is not empty")
    start = time.monotonic()
    (args.out / "metal").mkdir(parents=True)
    for path in sorted(args.freedoom.glob("*.mid")):
        shutil.copy(path, args.out / "metal" / path.name)
    jobs = []
    with tempfile.TemporaryDirectory() as tmp:
        for style in STYLES:
            (args.out / style).mkdir()
            (Path(tmp) / style).mkdir()
            jobs += [(*song(style, i, args.seed), Path(tmp) / style, args.out / style)
                     for i in range(args.files_per_style)]
        with ThreadPoolExecutor(args.workers) as pool:
            made = list(pool.map(render, jobs))
    rows = splits(args.out)
    (args.out / "splits.csv").write_text(
        "midi_filename,split\n" + "".join(f"{name},{split}\n" for name, split in rows))
    version = subprocess.run(["mma", "-v"], capture_output=True, text=True).stdout.split()[-1]
    sums = [f"{hashlib.sha1((args.out / n).read_bytes()).hexdigest()}  {n}" for n, _ in rows]
    (args.out / "SHA1SUMS").write_text(
        f"# make_corpus.py --seed {args.seed} --files-per-style {args.files_per_style}; "
        f"MMA {version}\n" + "\n".join(sums) + "\n")
    print(f"{args.out}: {len(made)} MMA files + {len(list((args.out / 'metal').glob('*.mid')))} "
          f"Freedoom files in {time.monotonic() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
