"""How well a model predicts held-out performances, next to n-gram baselines on the same events.

Every scorer sees the same *segments*: each file of the split cut into pieces of at most
``segment_events`` ids; within a segment, events 2..n are predicted from the ones before them
(the model starts each segment from a zero state, an n-gram from begin-of-sequence padding).
Reported per event: negative log-likelihood in nats and bits, perplexity, next-event accuracy,
and the NLL of each event type (NOTE_ON, NOTE_OFF, TIME_SHIFT, VELOCITY).

Baselines, trained on the dataset's train split: interpolated Kneser-Ney n-grams over event ids
(n = 1 is the absolute-discounted unigram, interpolated with the uniform distribution, so every
id has non-zero probability).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from melodia.corpus.shards import TokenDataset
from melodia.errors import DatasetError
from melodia.evaluate.scores import EvalResult, Totals, event_types
from melodia.features.band import EVENT_GROUPS, event_groups, record_conditions
from melodia.features.controls import model_inputs
from melodia.features.plan import BandLayout

log = logging.getLogger(__name__)


def _groups(encoding) -> list[str]:
    """Per-event groups for the band encoding (instrument groups and time), else none."""
    return list(EVENT_GROUPS) if any(r.type == "PROGRAM" for r in encoding.vocab.ranges) else []


def _group_indices(sequences: Sequence[np.ndarray], files, encoding,
                   groups: list[str]) -> dict[int, np.ndarray]:
    """Per file of ``files``, each event's group index (none without groups)."""
    if not groups:
        return {}
    return {f: event_groups(np.asarray(sequences[f], dtype=np.int64), encoding)
            for f in sorted(set(files))}


def segments(sequences: Sequence[np.ndarray], segment_events: int | None,
             max_events: int | None = None) -> list[tuple[int, int, int]]:
    """``(file index, start, end)`` of each segment, in order, stopping after ``max_events``."""
    out, scored = [], 0
    for f, seq in enumerate(sequences):
        step = segment_events or len(seq)
        for start in range(0, len(seq) - 1, step):
            end = min(len(seq), start + step)
            if end - start < 2:
                continue
            if max_events is not None and scored >= max_events:
                return out
            out.append((f, start, end))
            scored += end - start - 1
    return out


# --------------------------------------------------------------------------------- model


def scoring_segment(config, segment_events: int | None) -> int | None:
    """Segments no longer than the model's window (a transformer's context): every scorer of a
    run gets the same ones, and none asks a model to look further back than it trained to."""
    if config.window is None:
        return segment_events
    return min(segment_events or config.window, config.window)


def model_totals(model, sequences: Sequence[np.ndarray], encoding, *,
                 segment_events: int | None = 2048, batch_size: int = 8,
                 max_events: int | None = None, shard: tuple[int, int] = (0, 1),
                 progress: bool = False,
                 conditions: Sequence[np.ndarray | None] | None = None,
                 tempos: Sequence | None = None) -> Totals:
    """Score ``model`` on segments of ``sequences`` (this rank's share when ``shard=(rank, n)``);
    a band model takes each sequence's band conditions from ``conditions`` (see
    :func:`melodia.features.band.file_conditions`; absent ones are zeros)."""
    import torch
    from torch.nn import functional as F

    types, type_of = event_types(encoding)
    groups = _groups(encoding)
    totals = Totals(types, groups=groups)
    segs = segments(sequences, segment_events, max_events)[shard[0] :: shard[1]]
    segs.sort(key=lambda s: s[2] - s[1], reverse=True)  # similar lengths batch with less padding
    owners = _group_indices(sequences, [s[0] for s in segs], encoding, groups)
    width = model.config.input_dim
    use_controls = width > 0
    controls = {}
    if use_controls:
        for f in sorted({s[0] for s in segs}):
            band = conditions[f] if conditions is not None else None
            tempo = tempos[f] if tempos is not None else None
            controls[f] = model_inputs(sequences[f], encoding, model.config, band=band,
                                       tempos=tempo)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    batches = [segs[i : i + batch_size] for i in range(0, len(segs), batch_size)]
    from tqdm.auto import tqdm

    with torch.no_grad():
        for batch in tqdm(batches, desc="evaluating", unit="batch", disable=not progress,
                          leave=False):
            T = max(end - start for _, start, end in batch) - 1
            inputs = np.zeros((len(batch), T), dtype=np.int64)
            targets = np.full((len(batch), T), -1, dtype=np.int64)
            ctrl = np.zeros((len(batch), T, width), dtype=np.float32)
            group_of = np.zeros((len(batch), T), dtype=np.int64)
            for row, (f, start, end) in enumerate(batch):
                ids = np.asarray(sequences[f][start:end], dtype=np.int64)
                inputs[row, : len(ids) - 1], targets[row, : len(ids) - 1] = ids[:-1], ids[1:]
                if groups:
                    group_of[row, : len(ids) - 1] = owners[f][start + 1 : end]
                if use_controls:
                    ctrl[row, : len(ids) - 1] = controls[f][start : end - 1]
            x = torch.from_numpy(inputs).to(device)
            c = torch.from_numpy(ctrl).to(device) if use_controls else None
            logits, _ = model(x, None, c)
            logits = logits.float()
            mask = torch.from_numpy(targets >= 0).to(device)
            y = torch.from_numpy(np.maximum(targets, 0)).to(device)
            nll = F.cross_entropy(logits.transpose(1, 2), y, reduction="none")
            correct = (logits.argmax(-1) == y).to(torch.float64)
            m = mask.cpu().numpy()
            t = targets[m]
            totals.add(type_of[t], nll.cpu().double().numpy()[m], correct.cpu().numpy()[m],
                       group_of[m] if groups else None)
    model.train(was_training)
    return totals


# -------------------------------------------------------------------------------- n-grams


class NGram:
    """Interpolated Kneser-Ney n-gram over ids ``0..vocab_size-1`` (``n = 1``: unigram).

    The highest order uses raw counts, lower orders continuation counts; each order's discount is
    ``n1 / (n1 + 2 n2)`` unless ``discount`` is given. The lowest order interpolates with the
    uniform distribution. Sequences are padded with ``n - 1`` begin-of-sequence symbols.
    """

    def __init__(self, sequences: Sequence[np.ndarray], n: int, vocab_size: int,
                 discount: float | None = None) -> None:
        if not 1 <= n <= 7:
            raise ValueError("n must be in 1..7")
        if discount is not None and not 0 < discount < 1:
            raise ValueError("discount must be in (0, 1)")
        if not sum(len(s) for s in sequences):
            raise ValueError("an n-gram needs at least one training event")
        self.n, self.V, self.base = n, vocab_size, vocab_size + 1  # id V is begin-of-sequence
        grams = [np.concatenate([self._keys(s, m) for s in sequences]) for m in range(1, n + 1)]
        self.tables = []
        for m in range(1, n + 1):
            if m == n:
                keys, counts = np.unique(grams[m - 1], return_counts=True)
            else:  # continuation counts: distinct left neighbours of each m-gram
                suffix = np.unique(grams[m]) % self.base ** m
                keys, counts = np.unique(suffix, return_counts=True)
            ctx, inverse = np.unique(keys // self.base, return_inverse=True)
            total = np.bincount(inverse.reshape(-1), weights=counts, minlength=len(ctx))
            types = np.bincount(inverse.reshape(-1), minlength=len(ctx))
            n1, n2 = np.sum(counts == 1), np.sum(counts == 2)
            d = discount if discount is not None else (n1 / (n1 + 2 * n2) if n1 else 0.5)
            self.tables.append((keys, counts.astype(float), ctx, total, types, float(d)))

    def _padded(self, seq: np.ndarray) -> np.ndarray:
        return np.concatenate([np.full(self.n - 1, self.V, np.int64), np.asarray(seq, np.int64)])

    def _keys(self, seq: np.ndarray, m: int, positions: np.ndarray | None = None) -> np.ndarray:
        """Key of the m-gram ending at each position of ``seq`` (all positions by default)."""
        p = self._padded(seq)
        pos = np.arange(len(seq)) if positions is None else positions
        key = np.zeros(len(pos), np.int64)
        for r in range(m):
            key = key * self.base + p[pos + self.n - m + r]
        return key

    def probs(self, seq: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Distributions ``[len(positions), V]`` of the id at each position, given those before."""
        p = np.full((len(positions), self.V), 1.0 / self.V)
        ids = np.arange(self.V)
        for m, (keys, counts, ctx, total, types, d) in enumerate(self.tables, start=1):
            ctx_key = self._keys(seq, m, positions) // self.base  # drop the id being predicted
            j = np.minimum(np.searchsorted(ctx, ctx_key), len(ctx) - 1)
            found = ctx[j] == ctx_key
            c_total, c_types = total[j][:, None], types[j][:, None]
            gram = ctx_key[:, None] * self.base + ids
            g = np.minimum(np.searchsorted(keys, gram), len(keys) - 1)
            c = np.where(keys[g] == gram, counts[g], 0.0)
            mixed = np.maximum(c - d, 0.0) / c_total + d * c_types / c_total * p
            p = np.where(found[:, None], mixed, p)
        return p


def ngram_totals(train: Sequence[np.ndarray], sequences: Sequence[np.ndarray], encoding, n: int,
                 *, segment_events: int | None = 2048, max_events: int | None = None,
                 discount: float | None = None, chunk: int = 2048) -> Totals:
    """Score an n-gram fit on ``train`` over the same segments :func:`model_totals` uses."""
    types, type_of = event_types(encoding)
    groups = _groups(encoding)
    totals = Totals(types, groups=groups)
    lm = NGram(train, n, encoding.vocab_size, discount)
    segs = segments(sequences, segment_events, max_events)
    owners = _group_indices(sequences, [s[0] for s in segs], encoding, groups)
    for f, start, end in segs:
        seg = np.asarray(sequences[f][start:end], dtype=np.int64)
        owner = owners.get(f)
        for a in range(1, len(seg), chunk):
            pos = np.arange(a, min(a + chunk, len(seg)))
            p = lm.probs(seg, pos)
            target = seg[pos]
            nll = -np.log(p[np.arange(len(pos)), target])
            totals.add(type_of[target], nll, (p.argmax(1) == target).astype(float),
                       None if owner is None else owner[start + pos])
    return totals


# ------------------------------------------------------------------------------- reports


@dataclass
class EvalReport:
    """A model's scores and the baselines' on one split of a dataset."""

    dataset: str
    split: str
    results: list[EvalResult]
    checkpoint: str | None = None
    segment_events: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "split": self.split, "checkpoint": self.checkpoint,
                "segment_events": self.segment_events,
                "results": [r.to_dict() for r in self.results]}

    def table(self) -> str:
        types = list(self.results[0].by_type) if self.results else []
        head = (f"{'':<12}{'events':>9}{'nats/ev':>9}{'bits/ev':>9}{'ppl':>8}{'acc':>7}  "
                + "".join(f"{t.lower()[:10]:>11}" for t in types))
        lines = [f"{self.split} split of {self.dataset}; NLL by type in nats/event", head]
        for r in self.results:
            accuracy = "-" if math.isnan(r.accuracy) else f"{r.accuracy:.3f}"
            lines.append(f"{r.name:<12}{r.events:>9}{r.nll:>9.3f}{r.bits:>9.3f}{r.perplexity:>8.2f}"
                         f"{accuracy:>7}  "
                         + "".join(f"{_num(r.by_type[t]['nll']):>11}" for t in types))
        groups = [g for g in (self.results[0].by_group if self.results else {})
                  if self.results[0].by_group[g]["events"]]
        if groups:
            lines += ["", "NLL by instrument group (nats/event; notes, velocities and program "
                      "changes of each group's instruments; time = time shifts and tempo)",
                      f"{'':<12}" + "".join(f"{g[:10]:>11}" for g in groups),
                      f"{'share':<12}" + "".join(
                          f"{self.results[0].by_group[g]['share']:>11.3f}" for g in groups)]
            for r in self.results:
                lines.append(f"{r.name:<12}" + "".join(f"{_num(r.by_group[g]['nll']):>11}"
                                                       for g in groups))
        return "\n".join(lines)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _band_conditions(ckpt, records, sequences) -> list[np.ndarray] | None:
    if not ckpt.model.config.band_dim:
        return None
    return record_conditions(records, sequences, ckpt.encoding,
                             BandLayout.from_info(ckpt.extra.get("band") or {}))


def evaluate(model_path: str | Path, dataset_dir: str | Path, split: str = "test", *,
             baselines: Sequence[int] = (1, 3, 4, 5), segment_events: int | None = 2048,
             max_events: int | None = None, batch_size: int = 8, device: str = "cpu",
             progress: bool = True, memory: bool = True) -> EvalReport:
    """Score a checkpoint (file or run directory) and n-gram baselines on ``split`` of a dataset;
    ``memory``: also whole files without and with the piece's short-term model (rows ``whole
    files`` and ``+memory``, :func:`melodia.evaluate.memory.memory_results`)."""
    # deferred: torch; music statistics (evaluate --generated) run without it
    from melodia.model.checkpoint import load_checkpoint

    ckpt = load_checkpoint(model_path, map_location=device)
    data = TokenDataset(dataset_dir)
    if data.encoding.to_dict() != ckpt.encoding.to_dict():
        raise DatasetError(f"{dataset_dir} was prepared with encoding {data.encoding.to_dict()}, "
                           f"the model with {ckpt.encoding.to_dict()}")
    records = data.files(split)
    sequences = [data.ids(r) for r in records]
    if not sequences:
        raise DatasetError(f"{dataset_dir} has no files in the {split!r} split")
    log.info("scoring the model on %d file(s) of the %s split", len(sequences), split)
    segment_events = scoring_segment(ckpt.model_config, segment_events)
    kw = {"segment_events": segment_events, "max_events": max_events}
    band, tempos = _band_conditions(ckpt, records, sequences), [r.get("tempos") for r in records]
    results = [model_totals(ckpt.model, sequences, data.encoding, batch_size=batch_size,
                            progress=progress, conditions=band, tempos=tempos, **kw
                            ).result("model")]
    if memory:  # deferred: the short-term model is only needed here
        from melodia.evaluate.memory import memory_results
        results += memory_results(ckpt, sequences, tempos, band, max_events, progress)
    train = data.sequences("train")
    if baselines and not train:
        log.warning("no train split in %s: skipping the n-gram baselines", dataset_dir)
    for n in baselines if train else ():
        log.info("fitting and scoring the %d-gram baseline", n)
        name = "unigram" if n == 1 else f"{n}-gram"
        results.append(ngram_totals(train, sequences, data.encoding, n, **kw).result(name))
    return EvalReport(dataset=str(dataset_dir), split=split, results=results,
                      checkpoint=str(ckpt.path), segment_events=segment_events)


__all__ = ["EvalReport", "NGram", "evaluate", "model_totals", "ngram_totals", "segments"]
