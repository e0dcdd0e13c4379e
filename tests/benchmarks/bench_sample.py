"""Generation speed: event-by-event inference at batch 1 on one thread, and at batch 32.

Usage::

    python tests/benchmarks/bench_sample.py [--steps 2000] [--repeats 3] [--checkpoint PATH]
                                            [--data DATASET_DIR] [--json]

Models: Magenta's 3 x 512 LSTM (``ModelConfig()``, 512-d tied embeddings; random weights unless
``--checkpoint`` gives a trained one) and the shipped piano model. For each, in the same process
and interleaved, one greedy event at a time (feed the event, take the argmax, feed it back):

- ``eager default``: ``model(ids[B, 1], state)`` with PyTorch's defaults (oneDNN LSTM): the
  baseline every ratio is taken against;
- ``eager mkldnn off``: the same with ``torch.backends.mkldnn`` disabled;
- ``fast fp32`` / ``fast int8``: :class:`melodia.model.stepper.FastStepper`;
- ``generate fp32`` / ``generate int8``: the whole ``melodia.generate`` loop (top-p sampling,
  grammar masks, seeded generator), which is what a user gets.

Figures are events per second from the best of ``--repeats`` runs (wall clock; the CPU-time rate
of the same run is shown beside it: on a shared machine it is the steadier one). The shipped
model's real-time factor is seconds of music generated per wall second. With ``--data`` (a
``melodia prepare`` directory) held-out NLL is compared between the model and the fp32/int8
steppers, on the last 5% of each train file (the trainer's hold-out) or the validation split.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from melodia.generation.config import GenerateConfig, SamplerConfig
from melodia.generation.generator import generate_ids
from melodia.model.config import ModelConfig
from melodia.model.lstm import PerformanceRNN
from melodia.model.registry import load_model
from melodia.model.stepper import FastStepper, sequence_nll


def _eager(model: PerformanceRNN, batch: int, mkldnn: bool):
    def run(steps: int) -> None:
        torch.backends.mkldnn.enabled = mkldnn
        try:
            ids, state = torch.zeros(batch, 1, dtype=torch.long), None
            with torch.no_grad():
                for _ in range(steps):
                    logits, state = model(ids, state)
                    ids = logits[:, -1].argmax(-1, keepdim=True)
        finally:
            torch.backends.mkldnn.enabled = True
    return run


def _fast(stepper: FastStepper, batch: int):
    def run(steps: int) -> None:
        ids, state = torch.zeros(batch, dtype=torch.long), None
        for _ in range(steps):
            logits, _, state = stepper.step(ids, state)
            ids = logits.argmax(-1)
    return run


def _generate(model_path: Path, precision: str, batch: int):
    def run(steps: int) -> None:
        config = GenerateConfig(events=steps, num=batch, seed=0, precision=precision,
                                sampler=SamplerConfig(top_p=0.95))
        generate_ids(model_path, config)  # a path: the stepper is built once and cached
    return run


def _timed(run, steps: int, repeats: int) -> tuple[float, float]:
    """Best wall-clock rate and the CPU-time rate of that run, in steps per second."""
    run(min(20, steps))  # warm up
    best = (0.0, 0.0)
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.thread_time()
        run(steps)
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        if steps / wall > best[0]:
            best = (steps / wall, steps / max(cpu, 1e-9))
    return best


def bench_model(name: str, model_path: Path, steps: int, repeats: int) -> list[dict]:
    checkpoint = load_model(model_path)
    model = checkpoint.model.eval()
    fp32, int8 = FastStepper(model, "fp32"), FastStepper(model, "int8")
    rows = []
    for batch in (1, 32):
        n = steps if batch == 1 else max(50, steps // 16)
        cases = [("eager default", _eager(model, batch, True)),
                 ("eager mkldnn off", _eager(model, batch, False)),
                 ("fast fp32", _fast(fp32, batch)), ("fast int8", _fast(int8, batch)),
                 ("generate fp32", _generate(model_path, "fp32", batch)),
                 ("generate int8", _generate(model_path, "int8", batch))]
        base = None
        for label, run in cases:
            eager_n = n if "eager" not in label or batch > 1 else max(100, n // 8)
            rate, cpu_rate = _timed(run, eager_n, repeats)
            base = base or rate
            rows.append({"model": name, "batch": batch, "path": label,
                         "events_per_s": rate * batch, "cpu_events_per_s": cpu_rate * batch,
                         "x_eager_default": rate / base})
    return rows


def heldout_nll(checkpoint, data: Path, max_events: int = 20000) -> dict:
    from melodia.corpus.shards import TokenDataset
    from melodia.features.controls import compute_controls
    from melodia.training.crops import holdout_tail

    dataset = TokenDataset(data)
    tails = dataset.sequences("validation") or holdout_tail(dataset.sequences("train"), 0.05)[1]
    model, encoding = checkpoint.model.eval(), checkpoint.encoding
    out = {}
    for label, stepper in (("model", None), ("fp32", FastStepper(model, "fp32")),
                           ("int8", FastStepper(model, "int8"))):
        total = count = 0
        for tail in tails:
            tail = np.asarray(tail[: max_events // len(tails)], dtype=np.int64)
            ids = torch.from_numpy(tail)[None]
            ctrl = (torch.from_numpy(compute_controls(tail, encoding))[None]
                    if model.config.control_dim else None)
            if stepper is None:
                with torch.no_grad():
                    logits, _ = model(ids[:, :-1], None, None if ctrl is None else ctrl[:, :-1])
                nll = F.cross_entropy(logits[0], ids[0, 1:]).item()
            else:
                nll = sequence_nll(stepper, ids, ctrl)
            total, count = total + nll * (len(tail) - 1), count + len(tail) - 1
        out[label] = total / count
    out["int8_vs_fp32"] = out["int8"] / out["fp32"] - 1
    out["events"] = count
    return out


def realtime_factor(checkpoint, precision: str, seconds: float = 30.0) -> float:
    config = GenerateConfig(seconds=seconds, seed=0, precision=precision)
    generate_ids(checkpoint, GenerateConfig(events=20, seed=0, precision=precision))  # warm up
    start = time.perf_counter()
    result = generate_ids(checkpoint, config)
    wall = time.perf_counter() - start
    return result.scores()[0].end_s / wall


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="events per timed run at batch 1")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="a trained 3x512 checkpoint (default: random weights)")
    parser.add_argument("--data", type=Path, default=None,
                        help="prepared dataset for the held-out NLL comparison")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from melodia.encoding import get_encoding
    from melodia.model.checkpoint import save_checkpoint
    from melodia.model.registry import shipped_model_path

    big_path = args.checkpoint
    if big_path is None:
        torch.manual_seed(0)
        encoding = get_encoding("piano")
        big_path = Path(tempfile.mkdtemp()) / "random-3x512.pt"
        save_checkpoint(big_path, PerformanceRNN(ModelConfig(vocab_size=encoding.vocab_size)),
                        encoding, step=0)
    big, shipped = load_model(big_path), load_model("piano")
    c = shipped.model.config
    rows = bench_model("3x512", big_path, args.steps, args.repeats)
    rows += bench_model(f"shipped {c.num_layers}x{c.hidden_size}", shipped_model_path("piano"),
                        args.steps, args.repeats)
    report = {"torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows,
              "shipped_realtime_factor": {p: realtime_factor(shipped, p) for p in ("fp32", "int8")}}
    if args.data:
        report["nll"] = {"3x512": heldout_nll(big, args.data) if args.checkpoint else None,
                         "shipped": heldout_nll(shipped, args.data)}
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(f"torch {report['torch']}, {report['threads']} thread, greedy, one event per step")
    print(f"{'model':<14} {'batch':>5}  {'path':<17} {'events/s':>10} {'(cpu)':>10} {'x eager':>8}")
    for r in rows:
        print(f"{r['model']:<14} {r['batch']:>5}  {r['path']:<17} {r['events_per_s']:>10,.0f} "
              f"{r['cpu_events_per_s']:>10,.0f} {r['x_eager_default']:>8.1f}")
    for precision, factor in report["shipped_realtime_factor"].items():
        print(f"shipped model, generate {precision}: {factor:,.0f}x real time")
    for name, nll in (report.get("nll") or {}).items():
        if nll:
            print(f"{name} held-out NLL ({nll['events']} events): model {nll['model']:.4f}, "
                  f"fast fp32 {nll['fp32']:.4f}, int8 {nll['int8']:.4f} "
                  f"({100 * nll['int8_vs_fp32']:+.2f}% vs fp32)")


if __name__ == "__main__":
    main()
