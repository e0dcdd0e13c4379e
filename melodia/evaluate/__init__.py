"""Evaluation: how well a model predicts music, and how much generated music sounds like real music.

- :mod:`melodia.evaluate.nll`: negative log-likelihood of a model on a dataset split, by event
  type, next to unigram and Kneser-Ney n-gram baselines (``melodia evaluate MODEL DATA``).
- :mod:`melodia.evaluate.music`: per-excerpt music statistics of two folders of MIDI (generated
  and real), their distribution overlaps and a two-sample classifier test
  (``melodia evaluate --generated DIR --reference DIR``).
- :mod:`melodia.evaluate.band`: the same, instrument group by group, for band music
  (``--by-instrument``), with a 16th-grid statistic for drums.
- :mod:`melodia.evaluate.styles`: a style classifier trained on real music, and the share of
  generated pieces it assigns the style they were asked for (``--styles REAL_DIR``).
"""

from __future__ import annotations

from melodia.evaluate.band import BandEvalConfig, BandReport, compare_by_group
from melodia.evaluate.music import (STAT_NAMES, Excerpt, ExcerptSet, MusicEvalConfig, excerpt_stats,
                                    file_excerpts, measure_files)
from melodia.evaluate.nll import EvalReport, NGram, evaluate, model_totals, ngram_totals, segments
from melodia.evaluate.report import MusicReport, StatComparison, compare
from melodia.evaluate.scores import EvalResult, Totals, event_types
from melodia.evaluate.styles import style_accuracy

__all__ = ["BandEvalConfig", "BandReport", "EvalReport", "EvalResult", "Excerpt", "ExcerptSet",
           "MusicEvalConfig", "MusicReport", "NGram", "STAT_NAMES", "StatComparison", "Totals",
           "compare", "compare_by_group", "evaluate", "event_types", "excerpt_stats",
           "file_excerpts", "measure_files", "model_totals", "ngram_totals", "segments",
           "style_accuracy"]
