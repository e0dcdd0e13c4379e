"""The training input pipeline alone: finished batches (crops + augmentation + controls) per second.

Run: ``python tests/benchmarks/bench_batches.py [--data DATASET_DIR ...] [--batch-size 64]
[--seconds 10] [--workers 0 1 2]``

For each dataset (default: the committed chorales and Freedoom band files, prepared into a
temporary folder with each encoding) and the trainer's default augmentation (transpose 3, stretch
0.05, controls, note state; band conditions and meter for band data), in the same run:

- ``per-crop``: the reference path, one crop at a time (``CropDataset[i]``, dense inputs), as
  the trainer built batches before melodia.training.batches;
- ``compact``: :func:`melodia.training.batches.compact_batch` in this process (what a loader worker does);
- ``loader, N workers``: :func:`melodia.training.loader.batch_loader` with N background processes, timed
  as the training loop sees it (batches arriving in the main process), with the CPU time the main
  process spends receiving each batch (on a GPU that is the trainer's share; it overlaps the
  step, which the loop does not wait for);
- ``expand``: :func:`melodia.training.loader.expand_inputs` on ``--device`` (the trainer runs it where the
  model is);
- ``finished``: compact batches expanded into the dense inputs on the CPU, in this process (one
  core builds what a CPU step takes), with the crops' note state and without (the same crops
  otherwise), and with the note state expanded as before issue 32 (:func:`expand_before`).

Events/s count ``batch x seq_len`` predicted events. The issue's bar: >= 3M events/s of finished
batches on a 2-core machine, so the pipeline cannot hold back a GPU step at ~2M events/s; issue
32's: >= 1.5M events/s per core of finished piano batches of 256 x 512 with the note state
(``--data PIANO_DATASET --batch-size 256 --workers``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def prepared(folder: Path, encoding: str) -> str:
    from melodia.corpus.preparation import PrepareConfig, prepare
    from melodia.encoding import get_encoding

    out = Path(tempfile.mkdtemp(prefix=f"bench-{encoding}-"))
    prepare([folder], out, get_encoding(encoding), config=PrepareConfig(workers=1),
            progress=False)
    return str(out)


def rate(fn, batch_events: int, seconds: float) -> tuple[float, int, float]:
    """Events/s of ``fn()`` (one batch per call), after one warm-up call; the calls, and the
    CPU seconds this process spent per call (for the loader: what the trainer's own process
    pays to receive a batch)."""
    fn()
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    cpu = (time.process_time() - c0) / max(n, 1)
    return n * batch_events / (time.perf_counter() - t0), n, cpu


def expand_before(batch: dict, dims) -> "torch.Tensor":
    """:func:`melodia.training.loader.expand_inputs` as it was before issue 32 (the note state
    in a buffer of its own, recency by ``torch.exp``), for the before/after figure."""
    import torch

    from melodia.features.band import METER_SPANS
    from melodia.features.controls import (DENSITY_BINS, HISTOGRAM_PRIOR, NOTE_AGE_TAU_S,
                                           NOTE_STATE_PITCHES)

    B, L = batch["inputs"].shape
    out = torch.zeros(B, L, dims.total)
    valid = torch.arange(L)[None, :] < batch["lengths"][:, None]
    at = 0
    if dims.controls:
        density, counts = batch["density"].long(), batch["histogram"].float()
        onehot = torch.zeros(*density.shape, DENSITY_BINS)
        onehot.scatter_(2, density.clamp(min=0)[..., None], (density >= 0)[..., None].float())
        hist = counts + HISTOGRAM_PRIOR
        keep = valid & ~batch["histogram_dropped"][:, None]
        hist = torch.where(keep[..., None], hist / hist.sum(dim=2, keepdim=True), 0.0)
        out[..., : dims.controls] = torch.cat([onehot, hist], dim=2)
    at += dims.controls
    if dims.band:
        out[..., at : at + dims.band] = batch["band"][:, None, :] * valid[..., None]
    at += dims.band
    if dims.state:
        notes, time_ = batch["state_notes"].long(), batch["state_time"]
        P = NOTE_STATE_PITCHES
        state = torch.zeros(B * L, 2 * P)
        first, rows = notes[:, 0], notes[:, 1]
        total = int(batch["state_cells"])
        ends = torch.cumsum(rows, 0)
        cell = (torch.repeat_interleave(first - (ends - rows), rows, output_size=total)
                + torch.arange(total))
        pitch = torch.repeat_interleave(notes[:, 2], rows, output_size=total)
        age = time_.reshape(-1)[cell] - torch.repeat_interleave(notes[:, 3], rows,
                                                                output_size=total)
        scale = float(np.float32(-1.0 / (dims.steps_per_second * NOTE_AGE_TAU_S)))
        state[cell, pitch] = 1.0
        state[cell, pitch + P] = torch.exp(age.float() * scale)
        out[..., at : at + dims.state] = state.view(B, L, 2 * P)
    at += dims.state
    if dims.instrument:
        current = batch["instrument"].long()
        onehot = torch.zeros(B, L, dims.instrument)
        onehot.scatter_(2, current.clamp(min=0)[..., None], (current >= 0)[..., None].float())
        out[..., at : at + dims.instrument] = onehot
    if dims.meter:
        spans = torch.tensor(METER_SPANS, dtype=torch.float64)
        phase = 2 * math.pi * batch["beats"].double()[..., None] / spans
        meter = torch.cat([torch.sin(phase), torch.cos(phase)], dim=2).float()
        out[..., -dims.meter :] = meter * valid[..., None]
    return out


def bench(data: str, args: argparse.Namespace) -> None:
    import torch

    from melodia.training.batches import compact_batch, input_dims
    from melodia.training.config import TrainConfig
    from melodia.training.data import training_data
    from melodia.training.loader import batch_loader, expand_inputs, to_device, to_tensors

    torch.set_num_threads(1)
    B, L = args.batch_size, args.seq_len
    config = TrainConfig(data=data, batch_size=B, seq_len=L)
    _, train_seqs, _, crops, _, band = training_data(config)
    plain = training_data(replace(config, note_state=False))[3]  # the same crops, no note state
    dims = input_dims(crops)
    print(f"\n{data}: {len(train_seqs)} files, {sum(map(len, train_seqs)):,} events, "
          f"{crops.encoding.name} encoding, {dims.total} input floats per step; "
          f"batch {B} x {L}", flush=True)
    events = B * L
    step = iter(range(1, 10**9))

    def per_crop():
        first = next(step) * B
        items = [crops[i] for i in range(first, first + B)]
        return {k: torch.stack([x[k] for x in items]) for k in items[0]}

    def compact():
        first = next(step) * B
        return compact_batch(crops, range(first, first + B))

    kinds = ([] if args.skip_reference else [("per-crop (reference)", lambda: per_crop)])
    kinds += [("compact, this process", lambda: compact)]

    def finished(source, expand):  # what one core builds for a step on the CPU
        source_dims = input_dims(source)

        def build():
            first = next(step) * B
            batch = to_device(to_tensors(compact_batch(source, range(first, first + B))), "cpu")
            return expand(batch, source_dims)
        return lambda: build

    if crops.note_state:
        kinds += [("finished, note state", finished(crops, expand_inputs)),
                  ("finished, note state, before #32", finished(crops, expand_before)),
                  ("finished, no note state", finished(plain, expand_inputs))]
    for workers in args.workers:
        def from_loader(workers=workers):
            loader = batch_loader(crops, range(next(step) * 10**4, 10**9), B, workers=workers)
            next(loader)  # the workers have started
            return lambda: next(loader)
        kinds.append((f"loader, {workers} workers", from_loader))
    best: dict[str, float] = {}
    for r in range(args.rounds):
        for name, make in kinds:
            rate_r, n, cpu = rate(make(), events, args.seconds)
            best[name] = max(best.get(name, 0.0), rate_r)
            print(f"  round {r + 1} {name:>32}: {rate_r:>12,.0f} events/s  ({n} batches; "
                  f"this process {1000 * cpu:.2f} ms CPU per batch)", flush=True)
    print(f"  best of {args.rounds} rounds:")
    for name, _ in kinds:
        print(f"  {name:>32}: {best[name]:>12,.0f} events/s")
    device = torch.device(args.device)
    compact_t = to_device(to_tensors(compact_batch(crops, range(B))), device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def expand():
        expand_inputs(compact_t, dims)
        sync()

    r, n, _ = rate(expand, events, min(args.seconds, 3))
    print(f"  {f'expand on {device}':>32}: {r:>12,.0f} events/s  ({1000 * events / r:.2f} ms "
          f"per batch)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="*", default=None, help="prepared datasets (default: the "
                   "committed chorales as piano and Freedoom as band)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--seconds", type=float, default=4.0, help="per measurement")
    p.add_argument("--rounds", type=int, default=3, help="measurements per kind, alternating; "
                   "the best is reported (a shared CPU only ever slows a measurement down)")
    p.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    p.add_argument("--skip-reference", action="store_true")
    p.add_argument("--device", default="cpu", help="where to time expand_inputs (cpu, cuda)")
    args = p.parse_args()
    data = args.data or [prepared(ROOT / "data" / "midi" / "chorales", "piano"),
                         prepared(ROOT / "data" / "midi" / "freedoom", "band")]
    print(f"{os.cpu_count()} CPUs; torch on 1 thread per process")
    for d in data:
        bench(d, args)


if __name__ == "__main__":
    main()
