"""Training throughput: the whole melodia pipeline against a bare LSTM step of the same shape.

Run: ``python tests/benchmarks/bench_train.py [--device cpu|cuda] [--batch-size 64 256]
[--data DATASET_DIR] [--rounds 3] [--steps 5]`` (from a checkout; melodia need not be installed).
On a GPU: ``--device cuda --batch-size 64 256 --steps 30``.

Each measurement runs in its own process (so peak memory, ``ru_maxrss``, belongs to it alone)
and the kinds alternate round by round, so load from other processes hits them alike:

- ``lstm``: the bare step: embedding + ``nn.LSTM(512, 512, 3)`` (cuDNN on a GPU) + output layer
  + cross-entropy + AdamW on a fixed random batch, bf16 autocast on CUDA;
- ``model``: the same :class:`PerformanceRNN` the pipeline trains, forward + cross-entropy +
  backward + clip + AdamW on one fixed batch: the pipeline minus data, augmentation, logging;
- ``pipeline``: :func:`melodia.training.trainer.train` itself: crops, transpose, stretch, controls, LR
  schedule, grad clipping and the progress bar, timed from the end of its first step to the end
  of its last but one, with the GPU caught up at both ends (a real run waits for the GPU only at
  its log rows; the final step's log row, validation and checkpoint are reported apart).

``--mkldnn-off`` adds a ``model`` run with oneDNN disabled, the measurement behind the trainer
turning it on. Events/s count ``batch x seq_len`` predicted events per step. The summary gives,
per batch size, ``pipeline / lstm``: how close ``melodia train`` comes to the bare step (the
issue's goal on a GPU: >= 0.9 at batch 64 and 256).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def model_config(controls: bool, note_state: bool = True):
    from melodia.model.config import ModelConfig

    return ModelConfig(vocab_size=388, control_dim=20 if controls else 0,  # 3 x 512, tied
                       state_dim=256 if note_state else 0)


def run_one(kind: str, args: argparse.Namespace) -> dict:
    import torch
    from torch.nn import functional as F

    torch.backends.mkldnn.enabled = kind != "model-mkldnn-off"
    torch.manual_seed(0)
    B, L, n = args.batch_size[0], args.seq_len, args.steps
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda)  # noqa: E731
    times: list[float] = []
    if kind.startswith("pipeline"):  # "pipeline@baseline": the same, another checkout's code
        from melodia.training.config import TrainConfig
        from melodia.training.trainer import train

        # as a real run, which writes a log row (and waits for the GPU) every 10 steps or more:
        # here only after the last step, which also validates and saves (not timed)
        cfg = TrainConfig(data=args.data, out=tempfile.mkdtemp(prefix="bench-run-"),
                          steps=n + 1, batch_size=B, seq_len=L, eval_every=10**6,
                          log_every=10**6, eval_events=2048, device=args.device,
                          note_state=args.note_state, model=model_config(True, args.note_state))
        stamps: list[float] = []

        def stamp(info) -> None:  # after step 1 (warm-up) and step n, with the GPU caught up
            if info.step in (1, n):
                sync()
                stamps.append(time.perf_counter())

        t0 = time.perf_counter()
        train(cfg, progress=True, callbacks=[stamp])
        total = time.perf_counter() - t0
        times = [(stamps[1] - stamps[0]) / (n - 1)] * (n - 1)  # steps 2..n
        extra = {"setup_and_final_eval_s": total - sum(times)}
    else:
        ids = torch.randint(0, 388, (B, L), device=device)
        y = torch.randint(0, 388, (B, L), device=device)
        if kind == "lstm":
            net = torch.nn.ModuleDict({"embed": torch.nn.Embedding(388, 512),
                                       "lstm": torch.nn.LSTM(512, 512, 3, batch_first=True),
                                       "out": torch.nn.Linear(512, 388)}).to(device)

            def forward():
                return net["out"](net["lstm"](net["embed"](ids))[0])
        else:
            from melodia.model.lstm import PerformanceRNN

            net = PerformanceRNN(model_config(True, args.note_state)).to(device).train()
            ctrl = torch.rand(B, L, net.config.input_dim, device=device)

            def forward():
                return net(ids, None, ctrl)[0]

        def loss_fn():
            with autocast():
                logits = forward()
            return F.cross_entropy(logits.reshape(-1, 388).float(), y.reshape(-1))

        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
        for i in range(n + 1):
            sync()
            t = time.perf_counter()
            loss = loss_fn()
            loss.backward()
            if kind != "lstm":
                torch.nn.utils.clip_grad_norm_(net.parameters(), 3.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            float(loss)
            sync()
            if i:  # the first step warms up oneDNN's kernels
                times.append(time.perf_counter() - t)
        extra = {}
    step_s = statistics.mean(times)
    return {"kind": kind, "batch": B, "step_s": step_s, "events_per_s": B * L / step_s,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "threads": torch.get_num_threads(), **extra}


def default_dataset() -> str:
    """The shared corpus's MAESTRO performances when they are beside the checkout (long files,
    as a real corpus), else the committed Bach chorales; prepared into a temporary folder."""
    from melodia.corpus.preparation import PrepareConfig, prepare

    shared = ROOT.parent / "shared" / "corpus" / "piano"
    source = shared if shared.is_dir() else ROOT / "data" / "midi" / "chorales"
    out = Path(tempfile.mkdtemp(prefix="bench-data-"))
    prepare([source], out, config=PrepareConfig(workers=1, valid_fraction=0.2,
                                                test_fraction=0.0), progress=False)
    return str(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help="prepared dataset (default: the shared MAESTRO "
                   "files when present, else the chorales)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    p.add_argument("--batch-size", type=int, nargs="+", default=[16],
                   help="one or more batch sizes (the issue's GPU table: 64 256)")
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--mkldnn-off", action="store_true", help="also time the model without oneDNN")
    p.add_argument("--note-state", action=argparse.BooleanOptionalAction, default=True,
                   help="model and pipeline with the note-state input (the trainer's default)")
    p.add_argument("--baseline", default=None, metavar="CHECKOUT",
                   help="also time `melodia train` from another checkout of melodia (e.g. a "
                   "`git worktree` of an older commit), alternating with this one")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child process: one kind
    args = p.parse_args()
    if args.steps < 3:
        p.error("--steps must be >= 3: the pipeline's timed steps are its 2nd to last but one")
    if args.one:
        print(json.dumps(run_one(args.one, args)))
        return
    sys.path.insert(0, str(ROOT))  # melodia from this checkout, installed or not
    args.data = args.data or default_dataset()
    kinds = ["lstm", "model", "pipeline"] + (["model-mkldnn-off"] if args.mkldnn_off else [])
    kinds += ["pipeline@baseline"] if args.baseline else []
    summary = []
    for batch in args.batch_size:
        results: dict[str, list[dict]] = {k: [] for k in kinds}
        for r in range(args.rounds):
            for kind in kinds:
                cmd = [sys.executable, __file__, "--one", kind, "--data", args.data, "--steps",
                       str(args.steps), "--batch-size", str(batch), "--seq-len",
                       str(args.seq_len), "--device", args.device,
                       "--note-state" if args.note_state else "--no-note-state"]
                env = {**os.environ, "PYTHONWARNINGS": "ignore"}
                code = Path(args.baseline).resolve() if kind == "pipeline@baseline" else ROOT
                env["PYTHONPATH"] = os.pathsep.join(  # this checkout's melodia (or the other)
                    [str(code)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
                out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                                     env=env).stdout
                res = json.loads(out.strip().splitlines()[-1])
                results[kind].append(res)
                print(f"batch {batch} round {r + 1} {kind:>17}: {res['events_per_s']:10.0f} "
                      f"events/s ({res['step_s']:.3f} s/step), peak RSS "
                      f"{res['max_rss_mb']:.0f} MiB", flush=True)
        best = {k: max(x["events_per_s"] for x in v) for k, v in results.items()}
        summary.append((batch, best))
        print(f"\nbatch {batch} x {args.seq_len}, 3 x 512 LSTM on {args.device}, "
              f"{results['lstm'][0]['threads']} torch threads; best of {args.rounds} rounds:")
        for kind in kinds:
            rss = max(x["max_rss_mb"] for x in results[kind])
            print(f"  {kind:>17}: {best[kind]:10.0f} events/s   peak RSS {rss:.0f} MiB")
        print(flush=True)
    print("| batch | bare step (embedding + LSTM + output + AdamW) | model step | melodia train "
          "| train / bare |\n|---|---|---|---|---|")
    for batch, best in summary:
        print(f"| {batch} | {best['lstm']:,.0f} events/s | {best['model']:,.0f} events/s | "
              f"{best['pipeline']:,.0f} events/s | {best['pipeline'] / best['lstm']:.2f} |")
    if args.baseline:
        for batch, best in summary:
            print(f"batch {batch}: melodia train {best['pipeline']:,.0f} events/s here, "
                  f"{best['pipeline@baseline']:,.0f} in {args.baseline} "
                  f"({best['pipeline'] / best['pipeline@baseline']:.2f}x)")


if __name__ == "__main__":
    main()
