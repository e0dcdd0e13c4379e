"""``melodia train``, ``evaluate`` and ``export``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from melodia.cli.common import ENCODING_NAMES, MODEL_KINDS, _print, positive_float
from melodia.cli.given import _add_evaluate_given, _run_evaluate_given
from melodia.errors import MelodiaError
from melodia.util.knobs import KNOBS, argument


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a Performance RNN on a prepared dataset",
        description="Train the LSTM on random crops of the dataset's train split (augmented: "
        "transpose, time stretch), score the validation split every --eval-every steps, and keep "
        "last.pt and best.pt in the run directory with config.toml and metrics.jsonl. Every "
        "option can also be set in a TOML file (--config; model options in a [model] table); "
        "flags override it. Under `torchrun --nproc-per-node N -m melodia.cli train ...` the "
        "batch is split across N processes, one per GPU (DistributedDataParallel). On a GPU, "
        "background processes build the batches ahead of the step (--loader-workers).",
        epilog="example: melodia train runs/maestro -o runs/piano --steps 20000 --batch-size 64\n"
        "resume:  melodia train -o runs/piano --resume\n"
        "mix:     melodia train --data runs/maestro:0.7 --data runs/bach:0.3 -o runs/mixed\n"
        "         (the first dataset's validation split scores the run)\n"
        "stages:  melodia train runs/maestro -o runs/tuned --init runs/pretrained/best.pt\n"
        "4 GPUs:  torchrun --nproc-per-node 4 -m melodia.cli train runs/maestro -o runs/big\n"
        "full MAESTRO: data/recipes/maestro_full.md (--config data/recipes/maestro_3x512.toml)\n"
        "all 12 keys: --transpose 6 (every crop moved by -6..+6 semitones)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("data", nargs="?", type=Path, default=None,
                   help="dataset directory from `melodia prepare` (may come from --config, or "
                   "from the run's config.toml with --resume)")
    p.add_argument("--data", dest="mix", action="append", default=None, metavar="DIR[:WEIGHT]",
                   help="a dataset to train on; repeat to mix corpora, with weights as chances "
                   "per crop (all or none weighted); the first is validated on")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="run directory (config.toml, metrics.jsonl, last.pt, best.pt)")
    p.add_argument("--init", default=None, metavar="CKPT",
                   help="start from this checkpoint's weights (same model shape): pretrain on "
                   "scores, then fine-tune on performances")
    p.add_argument("--print-config", action="store_true",
                   help="print the full resolved config as TOML (defaults < --config < flags) "
                   "and exit: a starting point for a config file")
    p.add_argument("--config", type=Path, default=None, metavar="RUN.toml",
                   help="TOML file of settings (the config.toml a run saves is one)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in -o from last.pt, exactly (same data order and RNG)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    t = p.add_argument_group("training (default: the config file, else TrainConfig's)")
    for flag, kind, text in [
        ("--steps", int, "optimizer steps in all (default 20000)"),
        ("--batch-size", int, "crops per step, summed over processes (default 64)"),
        ("--seq-len", int, "events per crop (default 512)"),
        ("--lr", float, "peak learning rate (default 1e-3)"),
        ("--min-lr", float, "learning rate at the end of the cosine decay (default 1e-4)"),
        ("--warmup-steps", int, "linear warmup steps (default 200)"),
        ("--weight-decay", float, "AdamW weight decay (default 0)"),
        ("--grad-clip", float, "max gradient norm, 0 = off (default 3)"),
        ("--eval-every", int, "steps between validation passes and checkpoints (default 500)"),
        ("--eval-events", int, "validation events per pass, 0 = all (default 100000)"),
        ("--log-every", int, "steps per metrics.jsonl row (default 10)"),
        ("--seed", int, "random seed of crops, augmentation, init, dropout (default 0)"),
        ("--device", str, "auto, cpu, cuda or cuda:N (default auto)"),
        ("--transpose", int, "augmentation: max transposition in semitones (default 3)"),
        ("--stretch", float, "augmentation: max time stretch, 0.05 = 0.95..1.05 (default 0.05)"),
        ("--control-dropout", float, "chance to drop each control per crop (default 0.1)"),
        ("--loader-workers", int, "processes building batches ahead of the step; -1 = auto: "
         "none on a CPU (the step dwarfs the batch there), up to 4 per GPU (default -1)"),
    ]:
        knob = flag[2:].replace("-", "_")  # a size with a limit: checked by the knob table
        t.add_argument(flag, type=argument(knob) if knob in KNOBS else kind, help=text)
    t.add_argument("--controls", action=argparse.BooleanOptionalAction, default=None,
                   help="condition on note density and pitch-class histogram (default on)")
    t.add_argument("--note-state", action=argparse.BooleanOptionalAction, default=None,
                   help="feed the sounding notes and their age at every step (default on)")
    t.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="mixed precision on CUDA (default on)")
    m = p.add_argument_group("model (default 3 x 512 LSTM, tied 512-d embeddings)")
    m.add_argument("--kind", dest="model.kind", choices=MODEL_KINDS, default=None,
                   help="model family: the Performance RNN's LSTM (default), a transformer "
                        "with rotary positions and a KV cache, or Magenta's attention RNN")
    m.add_argument("--heads", dest="model.num_heads", type=argument("num_heads"), metavar="N",
                   help="transformer: attention heads (default 4)")
    m.add_argument("--context", dest="model.context", type=argument("context"), metavar="N",
                   help="transformer, attention-rnn: events attended to (default 512)")
    m.add_argument("--layers", dest="model.num_layers", type=argument("num_layers"), metavar="N")
    m.add_argument("--hidden-size", dest="model.hidden_size", type=argument("hidden_size"),
                   metavar="N")
    m.add_argument("--embed-dim", dest="model.embed_dim", type=argument("embed_dim"), metavar="N")
    m.add_argument("--dropout", dest="model.dropout", type=float, metavar="P", default=None)
    m.add_argument("--tie-embeddings", dest="model.tie_embeddings", default=None,
                   action=argparse.BooleanOptionalAction)


def _run_train(args: argparse.Namespace) -> int:
    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.training.config import run_config
    from melodia.training.trainer import train

    skip = {"command", "verbose", "data", "mix", "output", "config", "resume", "quiet",
            "print_config"}
    overrides: dict = {"model": {}}
    for key, value in vars(args).items():
        if value is None or key in skip:
            continue
        if key.startswith("model."):
            overrides["model"][key.split(".", 1)[1]] = value
        else:
            overrides[key] = value
    if overrides.get("eval_events") == 0:
        overrides["eval_events"] = None
    if args.data is not None and args.mix:
        raise MelodiaError("give the dataset as DATASET or as --data, not both")
    data = args.mix or args.data
    if args.print_config:
        out = args.output or "runs/melodia"
        try:
            config = run_config(data, out, args.config, overrides, resume=args.resume)
        except MelodiaError:  # no dataset named yet: show where it goes
            config = run_config("DATASET", out, args.config, overrides, resume=args.resume)
        print(config.to_toml(), end="")
        return 0
    if args.output is None:
        raise MelodiaError("give the run directory: -o RUN_DIR")
    config = run_config(data, args.output, args.config, overrides, resume=args.resume)
    result = train(config, resume=args.resume, progress=not args.quiet)
    if os.environ.get("RANK", "0") == "0":
        _print(f"trained {result.step} steps; best validation {result.best_nll:.4f} nats/event; "
               f"checkpoints in {result.run_dir}")
    return 0


_EVALUATE_DESCRIPTION = """\
melodia evaluate MODEL DATA: negative log-likelihood per event (nats and bits), perplexity,
next-event accuracy and NLL by event type, for the model and for unigram and Kneser-Ney n-gram
baselines fit on the dataset's train split. Files are scored in segments of --segment-events
events, the same segments for every scorer.

melodia evaluate --generated DIR --reference DIR: does generated music sound like real music?
Both folders (searched for .mid files) are encoded and decoded with --encoding, cut into
consecutive excerpts of --excerpt-seconds (a final piece under half as long is dropped; a 30 s
generated file is one excerpt), and each excerpt is measured:
  note_density         notes per second
  polyphony            mean number of pitches sounding, on 50 ms frames that have sound
  silence_share        share of 50 ms frames with nothing sounding
  pitch_mean/std/range MIDI pitch over notes (60 = middle C); range = highest - lowest
  length_median        median note length in seconds (sustain pedal included)
  long_2s, long_4s     share of notes longer than 2 s / 4 s
  velocity_mean/std    MIDI velocity over notes (1-127)
  ioi_median           median gap in seconds between successive distinct onset times
  pitch_class_entropy  entropy of the pitch-class histogram, bits (0 = one pitch class,
                       3.58 = all twelve equally common)
  semitone_clash       share of sounding frames where two adjacent keys (a minor 2nd) sound
  key_correlation      Krumhansl-Schmuckler: correlation of the duration-weighted pitch-class
                       histogram with the best of the 24 key profiles (music21's weights)
  key_stability        share of 5 s windows (2.5 s hop) whose own key is the global key
  key_changes_per_min  changes of key between consecutive windows, per minute
  melodic_repetition   share of 4-interval patterns of the top line (highest note at each
                       onset) that occur more than once in the excerpt
  chord_repetition     share of patterns of 4 successive onset pitch sets that recur
structure (does anything come back? onsets within 30 ms form one onset group):
  motif_recurrence     share of the 4-interval windows of the top line (highest note of each
                       onset group) whose interval pattern occurs at least twice
  rhythm_recurrence    the same for 4 successive gaps between onset groups, in half-octave
                       log bins from 10 ms
  chroma_return        for each 2 s window (1 s hop) from 6 s on, the best cosine similarity
                       of its pitch-class profile with a window that ended >= 2 s before; mean
  ioi_entropy          entropy of those gap bins, bits
  chord_share          share of onset groups of 3 or more notes

The table gives, per statistic, the mean over generated and over reference excerpts and the
overlap of their distributions (Gaussian KDE overlapping area: 1 = identical, 0 = disjoint);
then the intersections of pooled histograms of pitch class, velocity, note length and
inter-onset interval (1 = same shape); the mean overlap; and the 5-fold cross-validated
accuracy of a logistic regression telling the two sets apart from the statistics, on balanced
classes (the larger set subsampled): 0.5 = indistinguishable, 1.0 = always told apart.

--by-instrument (band music): both sides go through the band encoding and each file's notes are
split into instrument groups: drums (the drum channel), bass, guitar, keys, strings, winds,
synth, other (by GM program), plus "all" (every non-drum note, as above). The groups of a file
share its excerpts. Each group gets the statistics above plus
  grid16               share of distinct onsets within 20 ms (--grid-tolerance-ms) of a 16th-
                       note position of the file's tempo map, the grid starting at 0 s
                       (1.0 = quantized; onsets at random give about 2 x 20 ms / 16th length,
                       0.32 at 120 qpm)
  bar_return           share of the group's bars (after its first) whose set of (16th
                       position, pitch) has Jaccard >= 0.8 with an earlier bar; 4/4 at the
                       file's tempo (a looped riff: near 1)
drums get only note_density, polyphony, silence_share, pitch_mean/std/range (kit pieces),
velocity_mean/std, ioi_median, chord_repetition, rhythm_recurrence, ioi_entropy, grid16 and
bar_return. A group is compared (overlaps and classifier test) when both sides have at least
--min-excerpts excerpts of it, from 5 files (one per fold); the others are listed as skipped.

--styles REAL_DIR --generated GEN_DIR (both laid out as DIR/<style>/*.mid): a style classifier.
A logistic regression on every instrument group's statistics of each excerpt is trained on the
real music; a file's style is the likeliest over its excerpts. Printed: its accuracy on real
files, cross-validated with the folds grouped by file (should be well above chance), and the
share of generated files assigned the style of their folder, per style and overall.
Needs pip install 'melodia[eval]' (scipy, scikit-learn). --accompaniment: see the option."""


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a model's NLL on a dataset, or compare generated MIDI with real MIDI",
        description=_EVALUATE_DESCRIPTION,
        epilog="examples:\n  melodia evaluate runs/piano/best.pt runs/maestro --split test\n"
        "  melodia evaluate --generated samples/ --reference maestro/ --plot stats.png\n"
        "  melodia evaluate --generated band_samples/ --reference rock/ --by-instrument\n"
        "  melodia evaluate --styles real_by_style/ --generated generated_by_style/\n"
        "  melodia evaluate --accompaniment song-accompanied.mid real_band/ --parts drums,bass",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", nargs="?", default=None,
                   help="piano or band (the shipped models), a checkpoint, or a run directory "
                   "(uses best.pt)")
    p.add_argument("data", type=Path, nargs="?", help="dataset directory from `melodia prepare`")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    n = p.add_argument_group("model NLL (MODEL DATA)")
    n.add_argument("--split", choices=("train", "validation", "test"), default="test")
    n.add_argument("--no-memory", action="store_true", help="skip the rows of whole files "
                   "without and with the piece's short-term model (generate's --memory)")
    n.add_argument("--baselines", default="1,3,4,5", metavar="N,N,...",
                   help="n-gram orders to compare with, 1 = unigram, '' = none (default 1,3,4,5)")
    n.add_argument("--segment-events", type=argument("segment_events"), default=2048,
                   help="events per scored segment, 0 = whole files (default 2048)")
    n.add_argument("--max-events", type=argument("max_events"), help="score at most N events")
    n.add_argument("--batch-size", type=argument("batch_size"), default=8,
                   help="segments per forward pass (default 8)")
    n.add_argument("--device", default="auto",
                   help="auto (cuda if available), cpu, cuda or cuda:N (default auto)")
    m = p.add_argument_group("music statistics (--generated DIR --reference DIR)")
    m.add_argument("--generated", type=Path, default=None, metavar="DIR",
                   help="folder (or file) of generated MIDI")
    m.add_argument("--reference", type=Path, default=None, metavar="DIR",
                   help="folder (or file) of real MIDI to compare with")
    m.add_argument("--excerpt-seconds", type=positive_float, default=30.0, metavar="S",
                   help="excerpt length in seconds (default 30)")
    m.add_argument("--max-excerpts", type=argument("excerpts"), default=None, metavar="N",
                   help="at most N excerpts per file, the first ones (default all)")
    m.add_argument("--encoding", choices=ENCODING_NAMES, default=None,
                   help="encoding both sides go through before measuring (default piano; band "
                   "with --by-instrument or --styles)")
    m.add_argument("--workers", type=argument("eval_workers"), default=0,
                   help="processes measuring files, 0 = one per CPU (default 0)")
    m.add_argument("--seed", type=int, default=0,
                   help="seed of the classifier's subsampling and folds (default 0)")
    m.add_argument("--plot", type=Path, default=None, metavar="OUT.png",
                   help="also draw the distributions of every statistic (needs matplotlib)")
    b = p.add_argument_group("band music (--by-instrument, --styles)")
    b.add_argument("--by-instrument", action="store_true",
                   help="compare instrument group by group (drums, bass, guitar, keys...)")
    b.add_argument("--min-excerpts", type=argument("excerpts"), default=5, metavar="N",
                   help="compare a group when both sides have N excerpts of it (default 5)")
    b.add_argument("--grid-tolerance-ms", type=float, default=20.0, metavar="MS",
                   help="an onset this close to a 16th-note position is on the grid (default 20)")
    b.add_argument("--styles", type=Path, default=None, metavar="REAL_DIR",
                   help="real music as REAL_DIR/<style>/*.mid: train a style classifier and "
                   "check that --generated (GEN_DIR/<style>/*.mid) has the asked-for styles")
    _add_evaluate_given(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_evaluate(args: argparse.Namespace) -> int:
    if args.accompaniment:
        return _run_evaluate_given(args)
    music = args.generated is not None or args.reference is not None or args.styles is not None
    if music and (args.model is not None or args.data is not None):
        raise MelodiaError("give either MODEL DATA or --generated DIR --reference DIR, not both")
    if args.styles is not None:
        return _run_evaluate_styles(args)
    if music and args.by_instrument:
        return _run_evaluate_band(args)
    if music:
        return _run_evaluate_music(args)
    if args.model is None or args.data is None:
        raise MelodiaError("give MODEL DATA (NLL of a model) or --generated DIR --reference DIR "
                           "(music statistics); see melodia evaluate --help")
    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.evaluate import evaluate
    from melodia.model.registry import resolve_model

    device = args.device
    if device == "auto":
        import torch
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        orders = [int(n) for n in args.baselines.split(",") if n.strip()]
    except ValueError:
        raise MelodiaError(f"--baselines needs comma-separated integers, not {args.baselines!r}")
    report = evaluate(resolve_model(args.model), args.data, args.split, baselines=orders,
                      segment_events=args.segment_events or None, max_events=args.max_events,
                      batch_size=args.batch_size, device=device, progress=not args.quiet,
                      memory=not args.no_memory)
    print(json.dumps(report.to_dict(), indent=1) if args.json else report.table())
    return 0


def _run_evaluate_music(args: argparse.Namespace) -> int:
    import time

    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.evaluate import MusicEvalConfig, compare

    if args.generated is None or args.reference is None:
        raise MelodiaError("music statistics need both --generated DIR and --reference DIR")
    try:
        config = MusicEvalConfig(excerpt_s=args.excerpt_seconds, max_excerpts=args.max_excerpts,
                                 encoding=args.encoding or "piano", seed=args.seed,
                                 workers=args.workers)
    except ValueError as err:
        raise MelodiaError(str(err)) from None
    start = time.perf_counter()
    report = compare(args.generated, args.reference, config=config, progress=not args.quiet)
    print(json.dumps(report.to_dict(), indent=1) if args.json else report.table())
    if args.plot is not None:
        report.plot(args.plot)
        _print(f"wrote distributions to {args.plot}")
    _print(f"measured {report.generated_excerpts + report.reference_excerpts} excerpts in "
           f"{time.perf_counter() - start:.1f} s")
    return 0


def _band_config(args: argparse.Namespace):
    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.evaluate.band import BandEvalConfig

    if args.encoding not in (None, "band"):
        raise MelodiaError("instrument groups need the band encoding (--encoding band)")
    try:
        return BandEvalConfig(excerpt_s=args.excerpt_seconds, max_excerpts=args.max_excerpts,
                              seed=args.seed, workers=args.workers, min_excerpts=args.min_excerpts,
                              grid_tolerance_s=args.grid_tolerance_ms / 1000.0)
    except ValueError as err:
        raise MelodiaError(str(err)) from None


def _run_evaluate_band(args: argparse.Namespace) -> int:
    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.evaluate.band import compare_by_group

    if args.generated is None or args.reference is None:
        raise MelodiaError("--by-instrument needs both --generated DIR and --reference DIR")
    if args.plot is not None:
        raise MelodiaError("--plot draws one comparison; not available with --by-instrument")
    report = compare_by_group(args.generated, args.reference, config=_band_config(args),
                              progress=not args.quiet)
    print(json.dumps(report.to_dict(), indent=1) if args.json else report.table())
    return 0


def _run_evaluate_styles(args: argparse.Namespace) -> int:
    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.evaluate.styles import style_accuracy, style_table

    if args.reference is not None:
        raise MelodiaError("--styles REAL_DIR takes the place of --reference")
    result = style_accuracy(args.styles, args.generated, config=_band_config(args),
                            progress=not args.quiet)
    print(json.dumps(result, indent=1) if args.json else style_table(result))
    return 0


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a model as safetensors + JSON + model card (loads with no pickle)",
        description="Write a checkpoint as a folder: model.safetensors (weights only, fp16 unless "
        "--fp32), config.json (model and encoding configs, step, metrics and the metadata "
        "generation reads) and README.md (a model card). Absolute paths are stripped from the "
        "metadata. The folder works wherever a model is taken: --model DIR, melodia.load(DIR).",
        epilog="examples:\n  melodia export runs/piano -o export/piano\n"
        "  melodia export piano -o export/piano32 --fp32",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", metavar="RUN_OR_CKPT",
                   help="checkpoint, run directory (uses best.pt) or shipped model name")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="DIR",
                   help="folder to write (created if missing)")
    p.add_argument("--fp32", action="store_true", help="keep float32 weights (default float16)")
    p.add_argument("--force", action="store_true", help="replace files in DIR that an earlier "
                   "export did not write (a README.md, config.json: refused by default)")


def _run_export(args: argparse.Namespace) -> int:
    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.model.export import export_model

    print(export_model(args.source, args.out, "float32" if args.fp32 else "float16", args.force))
    return 0


# -------------------------------------------------------------------------------------- main
