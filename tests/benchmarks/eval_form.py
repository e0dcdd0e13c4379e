"""Song form: do returning sections come back, and does B differ?

    python tests/benchmarks/eval_form.py [--model band] [--form AABA] [--bars 8]
        [--randomness 0.2] [--seeds 1-10] [--json OUT.json]

For each seed, ``melodia generate --form`` plays the form (the band: its style, line-up and
tempo drawn by seed, as a user who asks for nothing gets). Every bar of a returning section is
compared with the same bar of the section's first playing, every bar of a new section with the
same bar of the first A: Jaccard of their (instrument, 16th, pitch) sets
(:func:`melodia.generation.form.section_matches`). Printed: the share of bars at Jaccard >= 0.8,
for returning sections (goal at randomness 0.2: >= 70%) and for new ones (goal: <= 30%), with
the mean Jaccard of the bars played anew (how close a variation stays).

The baseline in the same run: the same seeds played as one piece of the same length with
``melodia generate --bars`` (no form), its bars compared at the same places: how much the
model repeats on its own.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _seeds(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def _as_form(result, letters: str, bars: int):
    """A plain generation dressed as a form of the same length (for the same comparisons)."""
    from melodia.generation.form import Form

    score = result.scores()[0]
    bar_s = 240.0 / float(score.tempos["qpm"][0])
    sections = [(c, i * bars + 1, i * bars * bar_s, (i + 1) * bars * bar_s)
                for i, c in enumerate(letters)]
    return Form(score, letters, bars, sections, [[] for _ in letters], 0.0, result.seed)


def _shares(matches: dict, form: str) -> tuple[list[float], list[float]]:
    back, new = [], []
    seen = set()
    for i, letter in enumerate(form):
        (back if letter in seen else new).extend(matches.get(f"{letter}{i + 1}", []))
        seen.add(letter)
    return back, new


def main() -> int:
    from melodia.generation.config import GenerateConfig
    from melodia.generation.form import MATCH, form_ids, parse_form, section_matches
    from melodia.generation.generator import generate_ids

    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="band")
    p.add_argument("--form", default="AABA")
    p.add_argument("--bars", type=int, default=8)
    p.add_argument("--randomness", type=float, default=0.2)
    p.add_argument("--seeds", default="1-10")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    letters = parse_form(args.form)
    rows, start = [], time.perf_counter()
    for seed in _seeds(args.seeds):
        config = GenerateConfig(seed=seed, randomness=args.randomness)
        song = form_ids(args.model, config, letters, args.bars)
        back, new = _shares(section_matches(song), letters)
        varied = [section_matches(song)[f"{c}{i + 1}"][b - i * args.bars - 1]
                  for i, (c, bars) in enumerate(zip(letters, song.varied)) for b in bars]
        plain = generate_ids(args.model, GenerateConfig(
            seed=seed, randomness=args.randomness, bars=len(letters) * args.bars,
            tempo=song.band["qpm"] if song.band else None,
            style=song.band["style"] if song.band else None,
            lineup=song.band["names"] if song.band else None))
        p_back, p_new = _shares(section_matches(_as_form(plain, letters, args.bars)), letters)
        row = {"seed": seed, "band": song.band and {k: song.band[k] for k in ("style", "qpm")},
               "returning": float(np.mean(np.array(back) >= MATCH)),
               "new": float(np.mean(np.array(new) >= MATCH)),
               "varied_jaccard": float(np.mean(varied)) if varied else None,
               "plain_returning": float(np.mean(np.array(p_back) >= MATCH)),
               "plain_new": float(np.mean(np.array(p_new) >= MATCH))}
        rows.append(row)
        print(f"seed {seed:3d}  {str(row['band'] and row['band']['style']):8s} returning "
              f"{row['returning']:.2f}  new {row['new']:.2f}  varied bars' Jaccard "
              f"{row['varied_jaccard'] if varied else float('nan'):.2f}  | no form: at A's "
              f"places {row['plain_returning']:.2f}, at B's {row['plain_new']:.2f}", flush=True)
    summary = {k: float(np.mean([r[k] for r in rows if r[k] is not None]))
               for k in ("returning", "new", "varied_jaccard", "plain_returning", "plain_new")}
    print(f"\n{args.form} x {args.bars} bars, randomness {args.randomness}, {len(rows)} seeds, "
          f"{time.perf_counter() - start:.0f} s")
    print(f"bars at Jaccard >= {MATCH} with the first playing: returning sections "
          f"{summary['returning']:.1%} (goal >= 70%), new sections {summary['new']:.1%} "
          f"(goal <= 30%); bars played anew: mean Jaccard {summary['varied_jaccard']:.2f}")
    print(f"the same seeds without --form: {summary['plain_returning']:.1%} at the returning "
          f"sections' places, {summary['plain_new']:.1%} at the new ones'")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "summary": summary, "args": vars(args)}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
