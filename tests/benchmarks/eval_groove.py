"""Does the band groove? Per part: notes in 30 s, bars that return, drums on the 16th grid.

    PYTHONPATH=. python tests/benchmarks/eval_groove.py [MODEL] [--seeds 6] [--style-seeds 4]
        [--variant NAME:KNOB=VALUE,...]... [--real FOLDER]... [--workers 2] [--json OUT.json]

Two sets of pieces, generated with each variant's knobs (``GenerateConfig`` fields, e.g.
``today:repeat=0,drum_grid=0``, ``groove:repeat=corpus,drum_grid=1``, or ``default:`` for the
package defaults):

- **LnH**: ``--style heavy-metal --tempo 160 --randomness 0.2 --lineup
  drums,bass,guitar,guitar --seconds 30``, seeds 1..``--seeds``: bass and drum notes per seed;
- **styles**: metal and funk x ``--style-seeds`` seeds, package defaults (line-up and tempo
  drawn from the style's training files).

Every piece is written to MIDI and read back, then measured as ``melodia evaluate
--by-instrument`` measures a group: ``bar_return`` (share of bars with Jaccard >= 0.8 of
(16th position, pitch) to an earlier bar of the part, :func:`melodia.evaluate.structure.bar_return`)
and ``grid16`` (share of distinct drum onsets within 20 ms of a 16th, the grid from 0 s).
``--real FOLDER`` measures real files the same way (their first 30 s from the first onset).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from multiprocessing import Pool
from pathlib import Path

import numpy as np

LNH = {"style": "heavy-metal", "tempo": 160.0, "randomness": 0.2,
       "lineup": "drums,bass,guitar,guitar"}
STYLES = ("metal", "funk")
PARTS = ("drums", "bass")
SECONDS = 30.0


def parse_variant(text: str) -> tuple[str, dict]:
    """``"today:repeat=0,drum_grid=0"`` -> ``("today", {"repeat": 0.0, "drum_grid": False})``
    (``drum_grid`` and ``keep_playing`` are 0 or 1)."""
    name, _, knobs = text.partition(":")
    out: dict = {}
    for item in filter(None, knobs.split(",")):
        key, value = item.split("=", 1)
        out[key] = (bool(int(value)) if key in ("drum_grid", "keep_playing") else
                    None if value == "corpus" else float(value))
    return name, out


def measure(score, start_s: float = 0.0, seconds: float = SECONDS) -> dict[str, float]:
    """Notes, bars that return and grid share of the drums and bass of ``score`` in
    ``[start_s, start_s + seconds)``."""
    from melodia.evaluate.band import split_groups
    from melodia.evaluate.stats import grid_share
    from melodia.evaluate.structure import bar_return

    groups = split_groups(score)
    out: dict[str, float] = {}
    for part in PARTS:
        notes = groups.get(part, np.zeros(0, dtype=score.tracks[0].notes.dtype))
        notes = notes[(notes["start_s"] >= start_s) & (notes["start_s"] < start_s + seconds)]
        out[f"{part}_notes"] = float(len(notes))
        out[f"{part}_return"] = bar_return(notes, score.tempos)
        if part == "drums":
            out["drums_grid"] = grid_share(np.unique(notes["start_s"]), score.tempos)
    return out


def _generate(job: tuple[str, str, dict, dict, int]) -> dict:
    from melodia.generation.config import GenerateConfig
    from melodia.generation.generator import generate_ids
    from melodia.midi import read_midi, write_midi

    model, variant, knobs, base, seed = job
    config = GenerateConfig(seconds=SECONDS, seed=seed, **base, **knobs)
    score = generate_ids(model, config).scores()[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "piece.mid"
        write_midi(score, path)
        back = read_midi(path)
    return {"variant": variant, "set": "LnH" if base == LNH else base["style"], "seed": seed,
            **measure(back)}


def _real(path: str) -> dict:
    from melodia.midi import read_midi

    score = read_midi(path)
    starts = [t.notes["start_s"].min() for t in score.tracks if len(t.notes)]
    return {"variant": "real", "set": Path(path).parent.name, "seed": Path(path).stem,
            **measure(score, float(min(starts)) if starts else 0.0)}


def summary(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Per variant: mean bars that return and grid share (style sets), and the LnH notes."""
    out: dict[str, dict[str, float]] = {}
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        styled = [r for r in mine if r["set"] != "LnH"]
        lnh = [r for r in mine if r["set"] == "LnH"]
        s = {k: float(np.nanmean([r[k] for r in styled])) if styled else float("nan")
             for k in ("drums_return", "bass_return", "drums_grid")}
        for part in PARTS:
            notes = [r[f"{part}_notes"] for r in lnh]
            s[f"lnh_{part}_min"] = float(min(notes)) if notes else float("nan")
            s[f"lnh_{part}"] = " ".join(f"{n:.0f}" for n in notes)
        out[variant] = s
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", nargs="?", default="band")
    p.add_argument("--seeds", type=int, default=6, help="LnH seeds 1..N")
    p.add_argument("--style-seeds", type=int, default=4, help="seeds per style (metal, funk)")
    p.add_argument("--variant", action="append", default=None, metavar="NAME:KNOB=V,...")
    p.add_argument("--real", action="append", default=[], metavar="FOLDER")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    variants = [parse_variant(v) for v in args.variant or ["default:"]]
    jobs = [(args.model, name, knobs, LNH, seed) for name, knobs in variants
            for seed in range(1, args.seeds + 1)]
    jobs += [(args.model, name, knobs, {"style": style}, seed) for name, knobs in variants
             for style in STYLES for seed in range(args.style_seeds)]
    files = sorted(str(f) for folder in args.real for f in Path(folder).glob("*.mid"))
    with Pool(args.workers) as pool:
        rows = pool.map(_generate, jobs) + pool.map(_real, files)
    for r in rows:
        print(f"{r['variant']:>10s} {r['set']:>8s} {str(r['seed']):>24.24s}  "
              + "  ".join(f"{k}={r[k]:.2f}" if k.endswith(("return", "grid")) else f"{k}={r[k]:.0f}"
                          for k in r if k not in ("variant", "set", "seed")))
    table = summary(rows)
    print(f"\n{'variant':>10s} {'drums ret':>9s} {'bass ret':>8s} {'grid16':>7s}  LnH bass notes"
          f" / drum notes (seeds 1-{args.seeds})")
    for name, s in table.items():
        print(f"{name:>10s} {s['drums_return']:9.2f} {s['bass_return']:8.2f} "
              f"{s['drums_grid']:7.2f}  {s['lnh_bass']} / {s['lnh_drums']}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "summary": table}, indent=1))


if __name__ == "__main__":
    main()
