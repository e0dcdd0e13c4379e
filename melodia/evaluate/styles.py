"""Does generated music have the style it was asked for? A style classifier trained on real music.

:func:`style_accuracy` measures real band music labelled by style group by group
(:mod:`melodia.evaluate.band`), and trains a standardised, L2-regularised logistic regression on
the statistics of every excerpt: for each instrument group, that group's statistics in the
excerpt (its ``note_density`` is 0 where the group is silent; other missing values get the
training median). A file's style is the one with the highest mean predicted probability over
its excerpts.

Two figures come out:

- **real accuracy**: the cross-validated share of real files whose style is recognised, with
  the folds grouped by file (a file's excerpts are never on both sides of a split). It should
  be well above chance (1 / number of styles), or the classifier cannot judge style at all;
- **generated accuracy**: the share of generated files that the classifier, now trained on all
  real files, assigns to the style they were generated for, per style and overall.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from melodia.errors import MelodiaError
from melodia.evaluate import distributions
from melodia.evaluate.band import (BAND_GROUPS, BandEvalConfig, BandFile, measure_band_files,
                                   stat_names)
from melodia.evaluate.music import midi_files

log = logging.getLogger(__name__)


def style_folders(root: str | Path) -> dict[str, list[Path]]:
    """``{style: files}`` of a folder laid out as ``root/<style>/**.mid``."""
    root = Path(root)
    if not root.is_dir():
        raise MelodiaError(f"{root} is not a folder of style folders (ROOT/<style>/*.mid)")
    out = {d.name: midi_files(d) for d in sorted(root.iterdir()) if d.is_dir()}
    out = {style: files for style, files in out.items() if files}
    if not out:
        raise MelodiaError(f"no style folder with MIDI files in {root} (ROOT/<style>/*.mid)")
    return out


def _feature_names(groups: Sequence[str]) -> list[str]:
    return [f"{g}.{n}" for g in groups for n in stat_names(g)]


def file_features(measured: BandFile, groups: Sequence[str]) -> np.ndarray:
    """``[excerpts, features]``: per excerpt of the file, each group's statistics side by side
    (``nan`` where the group has no measured excerpt, but ``note_density`` 0). Excerpts where
    no group was measured are left out."""
    blocks, seen = [], np.zeros(measured.windows, bool)
    for group in groups:
        names = stat_names(group)
        block = np.full((measured.windows, len(names)), math.nan)
        block[:, names.index("note_density")] = 0.0
        if group in measured.groups:
            g = measured.groups[group]
            block[g.windows] = g.values
            seen[g.windows] = True
        blocks.append(block)
    x = np.concatenate(blocks, axis=1) if blocks else np.empty((measured.windows, 0))
    return x[seen]


def _model(seed: int):
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                         StandardScaler(), LogisticRegression(max_iter=5000, random_state=seed))


def _pooled(model, x: np.ndarray, file_of: np.ndarray, files: np.ndarray) -> np.ndarray:
    """Class index of each of ``files``: argmax of its excerpts' mean predicted probability."""
    proba, classes = model.predict_proba(x), model.classes_
    return np.array([int(classes[np.argmax(proba[file_of == f].mean(axis=0))]) for f in files])


def _cross_validate(x, y, file_of, folds: int, seed: int) -> tuple[float, float, float]:
    """(file accuracy, std over folds, excerpt accuracy) of grouped-by-file cross-validation."""
    from sklearn.model_selection import StratifiedGroupKFold

    file_label = {f: y[file_of == f][0] for f in np.unique(file_of)}
    per_style = np.bincount([file_label[f] for f in file_label])
    k = min(folds, int(per_style.min()))
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    right_files, right_excerpts, per_fold = [], [], []
    for train, test in cv.split(x, y, file_of):
        model = _model(seed).fit(x[train], y[train])
        files = np.unique(file_of[test])
        hit = _pooled(model, x[test], file_of[test], files) == np.array(
            [file_label[f] for f in files])
        right_files += hit.tolist()
        right_excerpts += (model.predict(x[test]) == y[test]).tolist()
        per_fold.append(hit.mean())
    return float(np.mean(right_files)), float(np.std(per_fold)), float(np.mean(right_excerpts))


def _stack(measured: Mapping[str, Sequence[BandFile]], styles: list[str],
           groups: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Excerpt features, style index and file index of every excerpt; the files' sources."""
    xs, ys, fs, sources = [], [], [], []
    for style, files in measured.items():
        for f in files:
            x = file_features(f, groups)
            if not len(x):
                continue
            xs.append(x)
            ys.append(np.full(len(x), styles.index(style)))
            fs.append(np.full(len(x), len(sources)))
            sources.append(f.source)
    if not xs:
        return np.empty((0, len(_feature_names(groups)))), np.empty(0, int), np.empty(0, int), []
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(fs), sources


def style_accuracy(real: Mapping[str, Sequence[str | Path]] | str | Path,
                   generated: Mapping[str, Sequence[str | Path]] | str | Path | None = None, *,
                   excerpt_seconds: float = 30.0, groups: Sequence[str] | None = None,
                   folds: int = 5, seed: int = 0, workers: int = 1,
                   config: BandEvalConfig | None = None, progress: bool = False) -> dict[str, Any]:
    """Train a style classifier on real music; check it on real music, then on generated music.

    Parameters
    ----------
    real : dict style -> files (or folders), or a folder laid out as ``ROOT/<style>/*.mid``
        Real music by style; every style needs at least two files that give an excerpt.
    generated : same form, optional
        Generated music by the style it was asked for; styles must be among the real ones.
    excerpt_seconds : float
        Excerpt length (default 30); shorter files give one excerpt if at least half as long.
    groups : sequence of str, optional
        Instrument groups whose statistics are features (default: every group of
        :data:`~melodia.evaluate.band.BAND_GROUPS` found in the real music).
    folds, seed, workers
        Cross-validation folds (grouped by file), seed, processes measuring files.
    config : BandEvalConfig, optional
        Measuring settings; overrides ``excerpt_seconds``, ``seed`` and ``workers``.

    Returns
    -------
    dict
        ``styles``, ``features`` (names), ``real_files`` per style, ``real_accuracy`` (files,
        cross-validated), ``real_accuracy_std`` (over folds), ``real_excerpt_accuracy``,
        ``chance`` (1 / styles), and with ``generated``: ``generated_accuracy`` (share of files
        assigned their style) and ``per_style`` {style: {files, accuracy, assigned: {style:
        count}}}; ``skipped`` lists files with no measurable excerpt or unreadable.
    """
    distributions.require_eval_extra()
    config = config or BandEvalConfig(excerpt_s=excerpt_seconds, seed=seed, workers=workers)
    real = style_folders(real) if isinstance(real, (str, Path)) else real
    if generated is not None and isinstance(generated, (str, Path)):
        generated = style_folders(generated)
    styles = sorted(real)
    if len(styles) < 2:
        raise MelodiaError(f"a style classifier needs at least two styles, got {styles}")
    unknown = set(generated or {}) - set(styles)
    if unknown:
        raise MelodiaError(f"generated styles {sorted(unknown)} are not among the real ones "
                           f"{styles}")
    measured = {s: measure_band_files(midi_files(real[s]), config, progress=progress,
                                      desc=f"real {s}") for s in styles}
    if groups is None:
        present = {g for files in measured.values() for f in files for g in f.groups}
        groups = [g for g in BAND_GROUPS if g in present]
    x, y, file_of, sources = _stack(measured, styles, groups)
    real_files = {s: int(len(np.unique(file_of[y == i]))) for i, s in enumerate(styles)}
    if min(real_files.values()) < 2:
        raise MelodiaError(f"every style needs at least 2 real files with an excerpt of "
                           f">= {config.min_notes} notes; got {real_files}")
    acc, acc_std, excerpt_acc = _cross_validate(x, y, file_of, folds, config.seed)
    skipped = [f.error or f"{f.source}: no excerpt" for files in measured.values()
               for f in files if f.error or not f.groups]
    out: dict[str, Any] = {"styles": styles, "features": _feature_names(groups),
                           "real_files": real_files, "real_accuracy": acc,
                           "real_accuracy_std": acc_std, "real_excerpt_accuracy": excerpt_acc,
                           "chance": 1.0 / len(styles), "excerpt_s": config.excerpt_s}
    if generated:
        model = _model(config.seed).fit(x, y)
        gen = {s: measure_band_files(midi_files(generated[s]), config, progress=progress,
                                     desc=f"generated {s}") for s in generated}
        gx, gy, gfile, gsources = _stack(gen, styles, groups)
        skipped += [f.error or f"{f.source}: no excerpt" for files in gen.values()
                    for f in files if f.error or not f.groups]
        files = np.arange(len(gsources))
        assigned = _pooled(model, gx, gfile, files) if len(gx) else np.empty(0, int)
        wanted = np.array([gy[gfile == f][0] for f in files], int)
        out["per_style"] = {}
        for s in generated:
            mine = wanted == styles.index(s)
            counts = np.bincount(assigned[mine], minlength=len(styles))
            out["per_style"][s] = {
                "files": int(mine.sum()),
                "accuracy": float((assigned[mine] == styles.index(s)).mean())
                if mine.any() else math.nan,
                "assigned": {t: int(c) for t, c in zip(styles, counts)}}
        out["generated_accuracy"] = float((assigned == wanted).mean()) if len(files) else math.nan
    out["skipped"] = skipped
    return out


def style_table(result: Mapping[str, Any]) -> str:
    """Plain-text summary of :func:`style_accuracy`."""
    def pct(v: float) -> str:
        return "-" if v is None or not math.isfinite(v) else f"{100 * v:.1f}%"

    lines = [f"style classifier: logistic regression on {len(result['features'])} per-excerpt "
             f"statistics ({result['excerpt_s']:g} s excerpts), files pooled over excerpts",
             f"real music, cross-validated by file: {pct(result['real_accuracy'])} of files "
             f"(+- {pct(result['real_accuracy_std'])}), {pct(result['real_excerpt_accuracy'])} "
             f"of excerpts; chance {pct(result['chance'])}",
             "  files per style: " + ", ".join(f"{s} {n}" for s, n in
                                               result["real_files"].items())]
    if "per_style" in result:
        lines += ["", f"{'generated as':<16}{'files':>6}{'as asked':>10}  assigned to"]
        for s, r in result["per_style"].items():
            assigned = ", ".join(f"{t} {c}" for t, c in r["assigned"].items() if c)
            lines.append(f"{s:<16}{r['files']:>6}{pct(r['accuracy']):>10}  {assigned}")
        lines.append(f"{'overall':<16}{sum(r['files'] for r in result['per_style'].values()):>6}"
                     f"{pct(result['generated_accuracy']):>10}")
    if result.get("skipped"):
        lines.append(f"skipped {len(result['skipped'])} file(s) (unreadable or no excerpt)")
    return "\n".join(lines)


__all__ = ["file_features", "style_accuracy", "style_folders", "style_table"]
