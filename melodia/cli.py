"""The ``melodia`` command line: parse arguments, build a config, call a library function.

Each subcommand is a pair of functions: ``_add_<name>(subparsers)`` declares its arguments and
``_run_<name>(args)`` calls the library. Only this module prints for humans; the library logs.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from pathlib import Path

from melodia.errors import MelodiaError

ENCODING_NAMES = ("piano", "band")


def _print(*parts: object) -> None:
    print(*parts, file=sys.stderr)


# ------------------------------------------------------------------ argument types and paths

MAX_SECONDS = 24 * 3600.0  # longest --seconds: a day of music


def _number(low: float | None = None, high: float | None = None, *, open_low: bool = False,
            kind: type = float):
    """An argparse type: a finite number (int or float) in [low, high] ((low, high] if open_low)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"needs a{'n integer' if kind is int else ' number'}"
                                             f", not {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"needs a finite number, not {text!r}")
        if low is not None and (value <= low if open_low else value < low):
            raise argparse.ArgumentTypeError(f"must be {'>' if open_low else '>='} {low:g}, "
                                             f"not {text}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be <= {high:g}, not {text}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


finite_float = _number()
non_negative_float = _number(0.0)
positive_float = _number(0.0, open_low=True)
positive_int = _number(1, kind=int)
seconds_float = _number(0.0, MAX_SECONDS, open_low=True)


def _output(path: Path, *, create: bool = True) -> Path:
    """Check that ``path`` can be written: its folder is made if missing (``create``), and a
    file in the way, an existing folder at ``path`` or a read-only folder is one clear error."""
    parent = path.parent
    for above in (parent, *parent.parents):
        if above.exists():
            if not above.is_dir():
                raise MelodiaError(f"cannot write {path}: {above} is a file, not a folder")
            break
    if path.is_dir():
        raise MelodiaError(f"cannot write {path}: it is a folder")
    if not parent.is_dir():
        if not create:
            raise MelodiaError(f"cannot write {path}: no folder {parent}")
        parent.mkdir(parents=True, exist_ok=True)
    if not os.access(parent, os.W_OK):
        raise MelodiaError(f"cannot write {path}: {parent} is read-only")
    existed = path.exists()
    try:  # os.access says yes to root everywhere: try it, before minutes of work are lost
        with open(path, "ab"):
            pass
    except OSError as err:
        raise MelodiaError(f"cannot write {path}: {err.strerror or err}") from None
    if not existed:
        path.unlink()
    return path


# ------------------------------------------------------------------------------ encode/decode


def _add_encode(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "encode",
        help="turn a MIDI file into event ids",
        description="Encode a MIDI file into integer event ids. Writes JSON "
        '{"encoding": ..., "config": ..., "ids": [...]} to -o, or prints the events readably.',
    )
    p.add_argument("midi", type=Path, help="input .mid file")
    p.add_argument("-o", "--output", type=Path, help="tokens.json to write (default: print events)")
    p.add_argument("--encoding", choices=ENCODING_NAMES, default="piano",
                   help="piano: Performance RNN's 388 events; band: + program and tempo (default piano)")
    p.add_argument("--no-sustain", action="store_true", help="do not apply the sustain pedal")


def _run_encode(args: argparse.Namespace) -> int:
    from melodia.encoding import get_encoding

    enc = get_encoding(args.encoding, sustain=not args.no_sustain)
    ids = enc.encode_file(args.midi)
    if args.output is None:
        for event in enc.describe(ids):
            print(event)
        _print(f"{len(ids)} events ({args.encoding} encoding, vocabulary {enc.vocab_size})")
        return 0
    payload = {"encoding": enc.name, "config": enc.config.to_dict(), "ids": ids.tolist()}
    _output(args.output).write_text(json.dumps(payload))
    _print(f"wrote {len(ids)} events to {args.output}")
    return 0


def _add_decode(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "decode",
        help="turn event ids back into a MIDI file",
        description="Decode event ids (a tokens.json from `melodia encode`, a JSON list, or "
        "whitespace-separated integers) into a MIDI file. Any id sequence within the vocabulary "
        "decodes to valid MIDI.",
    )
    p.add_argument("tokens", type=Path, help="tokens.json or a text file of integers")
    p.add_argument("-o", "--output", type=Path, required=True, help="MIDI file to write")
    p.add_argument("--encoding", choices=ENCODING_NAMES, default=None,
                   help="encoding of the ids (default: the one named in tokens.json, else piano)")


def _run_decode(args: argparse.Namespace) -> int:
    from melodia.encoding import get_encoding, load_tokens
    from melodia.midi import write_midi

    _output(args.output)
    name, config, ids = load_tokens(args.tokens)
    enc = get_encoding(args.encoding or name or "piano", config=config if not args.encoding else None)
    score = enc.decode(ids)
    write_midi(score, args.output)
    _print(f"wrote {score.note_count} notes ({score.end_s:.1f} s) to {args.output}")
    return 0


# ----------------------------------------------------------------------------------- prepare


def _add_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="encode a corpus of MIDI files and scores into token shards",
        description="Walk folders of MIDI files and scores (MusicXML .musicxml/.mxl/.xml, ABC .abc, "
        "Humdrum .krn), encode them in parallel and write memory-mappable token shards plus "
        "manifest.json. Scores are read with music21 and played as written: repeats expanded, "
        "tempo from metronome marks (100 qpm without any), velocities from dynamics; each tune of "
        "a multi-tune ABC file is its own piece (file.abc#i). music21:NAME reads music21's bundled "
        "corpus: a composer or collection (music21:bach, music21:essenFolksong), one work "
        "(music21:bach/bwv66.6) or all of it (music21:all); the manifest records each piece's "
        "licence. Converted scores are cached under $XDG_CACHE_HOME/melodia/scores "
        "(~/.cache/melodia/scores). A folder holding maestro-v*.csv/.json uses MAESTRO's "
        "train/validation/test split, and so does a splits.csv (columns midi_filename,split); other "
        "files are split by a hash of their content, so adding files never moves old ones. Corrupt "
        "files are skipped and listed in the manifest. Re-running on the same output only encodes "
        "pieces it has not seen.",
        epilog="examples: melodia prepare data/midi -o runs/demo\n"
        "          melodia prepare music21:bach -o runs/bach --humanize 0.01\n"
        "          melodia prepare music21:all --max-files 300 -o runs/m21\n"
        "          melodia prepare runs/band_src --encoding band --labels-from-folders -o runs/band",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sources", nargs="+",
                   help="MIDI or score files, folders (searched recursively) or music21:NAME")
    p.add_argument("-o", "--output", type=Path, required=True, help="dataset directory")
    p.add_argument("--encoding", choices=ENCODING_NAMES, default="piano")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="processes (default: CPU count)")
    p.add_argument("--valid-fraction", type=_number(0.0, 1.0), default=0.05,
                   help="share of non-MAESTRO files held out for validation (default 0.05)")
    p.add_argument("--test-fraction", type=_number(0.0, 1.0), default=0.05,
                   help="share of non-MAESTRO files held out for test (default 0.05)")
    p.add_argument("--no-sustain", action="store_true", help="do not apply the sustain pedal")
    p.add_argument("--max-files", type=positive_int, default=None, metavar="N",
                   help="encode at most N pieces, the first in sorted order (e.g. for music21:all)")
    p.add_argument("--labels-from-folders", action="store_true",
                   help="style label of each file = its top folder below the source folder "
                   "(SRC/metal/a.mid -> metal), stored as the record's \"style\" and listed in "
                   "the manifest's \"styles\"; files directly in SRC get none (null)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    s = p.add_argument_group("scores (MusicXML, ABC, kern, music21:)")
    s.add_argument("--humanize", type=non_negative_float, default=0.0, metavar="SECONDS",
                   help="std of random onset jitter in seconds, e.g. 0.01, with velocity jitter "
                   "(std 6); seeded, so reruns match (default 0: off)")
    s.add_argument("--humanize-seed", type=int, default=0, metavar="N",
                   help="seed of the humanisation, mixed with each piece's hash (default 0)")
    s.add_argument("--cache-dir", type=Path, default=None,
                   help="folder of converted scores (default $XDG_CACHE_HOME/melodia/scores)")
    s.add_argument("--no-cache", action="store_true",
                   help="parse every score with music21 again, and write no cache")


def _run_prepare(args: argparse.Namespace) -> int:
    from melodia.corpus import PrepareConfig, prepare
    from melodia.encoding import get_encoding
    from melodia.scores import ScoreConfig

    scores = ScoreConfig(humanize_s=args.humanize, seed=args.humanize_seed,
                         cache=not args.no_cache,
                         cache_dir=str(args.cache_dir) if args.cache_dir else None)
    config = PrepareConfig(valid_fraction=args.valid_fraction, test_fraction=args.test_fraction,
                           workers=args.workers, max_files=args.max_files, scores=scores,
                           labels_from_folders=args.labels_from_folders)
    enc = get_encoding(args.encoding, sustain=not args.no_sustain)
    if args.output.exists() and not args.output.is_dir():
        raise MelodiaError(f"cannot write {args.output}: it is a file, not a folder")
    existed = args.output.exists()
    _output(args.output / "manifest.json")  # writable? (makes the folder)
    report = prepare(args.sources, args.output, enc, config, progress=not args.quiet)
    _print(report.summary())
    if report.failed:
        if not existed and args.output.is_dir():  # this run made it and encoded nothing:
            import shutil                          # leave nothing behind

            shutil.rmtree(args.output)
        _print(f"melodia prepare: error: {report.failed}")
        return 1
    _print_splits(args.output / "manifest.json")
    return 0


def _print_splits(manifest: Path) -> None:
    """One line of file counts per split, and a warning line when validation or test is empty."""
    from collections import Counter

    counts = Counter(f.get("split") for f in json.loads(manifest.read_text())["files"])
    names = ("train", "validation", "test")
    _print("  split: " + ", ".join(f"{counts[n]} {n}" for n in names) + " file(s)")
    empty = [n for n in names[1:] if not counts[n]]
    if empty:
        _print(f"  warning: no {' or '.join(empty)} files: add more files or raise "
               f"--valid-fraction/--test-fraction ({'evaluate' if 'test' in empty else 'train'} "
               "needs them)")


# ------------------------------------------------------------------------------ render/plot


def _add_render(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render",
        help="synthesize a MIDI file to audio with FluidSynth",
        description="Render a MIDI file to stereo audio with FluidSynth: every note, program, "
        "drum (channel 10) and sustain-pedal change is played, and the release and reverb tail "
        "after the last note is kept (up to --max-tail seconds). The suffix of -o picks the "
        "format: .wav (16-bit), .flac or .ogg. SoundFont: --soundfont, else $MELODIA_SOUNDFONT, "
        "else TimGM6mb.sf2 shipped with pretty_midi, else a system one such as "
        "/usr/share/sounds/sf2/FluidR3_GM.sf2. Needs libfluidsynth "
        "(apt-get install libfluidsynth3 / brew install fluid-synth) and "
        "pip install 'melodia[audio]'.",
        epilog="example: melodia render song.mid -o song.flac --soundfont FluidR3_GM.sf2",
    )
    p.add_argument("midi", type=Path, help="input .mid file")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="audio file to write: .wav, .flac or .ogg (default: the input with .wav)")
    p.add_argument("--soundfont", type=Path, default=None, metavar="FILE.sf2",
                   help="General MIDI SoundFont (.sf2/.sf3) to play with")
    p.add_argument("--sample-rate", type=_number(8000, 96000, kind=int), default=44100,
                   metavar="HZ",
                   help="output sample rate, 8000-96000 (default 44100)")
    p.add_argument("--gain", type=positive_float, default=0.2,
                   help="FluidSynth master gain (default 0.2); only matters with --no-normalize")
    p.add_argument("--no-normalize", action="store_true",
                   help="keep FluidSynth's level instead of scaling the peak to -1 dBFS "
                   "(loud passages may clip)")
    p.add_argument("--max-tail", type=non_negative_float, default=5.0, metavar="SECONDS",
                   help="longest tail kept after the last note while the sound dies away "
                   "(default 5)")
    p.add_argument("--stems", type=Path, default=None, metavar="DIR",
                   help="also write one file per instrument into DIR (01-drums.wav, ...), each "
                   "as long as the mix and at its level, to line up in a DAW; format as -o")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_render(args: argparse.Namespace) -> int:
    from melodia.render import render, render_stems

    out = args.output or args.midi.with_suffix(".wav")
    _not_input(out, args.midi)
    _output(out)
    if args.stems is not None:
        stems = render_stems(args.midi, args.stems, suffix=out.suffix, mix=out,
                             soundfont=args.soundfont, sample_rate=args.sample_rate,
                             gain=args.gain, normalize=not args.no_normalize,
                             max_tail_s=args.max_tail, progress=not args.quiet)
        _print(f"wrote the mix to {out} and {len(stems)} stems to {args.stems}")
        return 0
    audio = render(args.midi, out, soundfont=args.soundfont, sample_rate=args.sample_rate,
                   gain=args.gain, normalize=not args.no_normalize, max_tail_s=args.max_tail,
                   progress=not args.quiet)
    _print(f"wrote {len(audio) / args.sample_rate:.1f} s of audio to {out}")
    return 0


def _not_input(out: Path, midi: Path) -> None:
    if out.resolve() == midi.resolve():
        raise MelodiaError(f"-o {out} is the input file; give another output path")


def _add_plot(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot",
        help="draw a piano roll of a MIDI file",
        description="Draw a piano roll: time in seconds across, pitch up (C of each octave "
        "named), one colour per track with its General MIDI instrument in the legend, note "
        "opacity following velocity, and the sustain pedal shaded in a strip underneath. "
        "Needs matplotlib (pip install 'melodia[plot]').",
        epilog="example: melodia plot song.mid -o roll.png --width 2400  (wider for long pieces)",
    )
    p.add_argument("midi", type=Path, help="input .mid file")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="image to write: .png, .svg, .pdf... (default: the input with .png)")
    p.add_argument("--width", type=positive_int, default=1600, metavar="PX",
                   help="image width in pixels (default 1600; ~2400+ for pieces over 5 minutes)")
    p.add_argument("--height", type=positive_int, default=900, metavar="PX",
                   help="image height in pixels (default 900)")
    p.add_argument("--title", default=None, help="title above the roll (default: the file name)")


def _run_plot(args: argparse.Namespace) -> int:
    from melodia.plot import plot_piano_roll

    out = args.output or args.midi.with_suffix(".png")
    _not_input(out, args.midi)
    _output(out)
    plot_piano_roll(args.midi, out, width_px=args.width, height_px=args.height, title=args.title)
    _print(f"wrote piano roll to {out}")
    return 0


# ---------------------------------------------------------------------------- train/evaluate


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a Performance RNN on a prepared dataset",
        description="Train the LSTM on random crops of the dataset's train split (augmented: "
        "transpose, time stretch), score the validation split every --eval-every steps, and keep "
        "last.pt and best.pt in the run directory with config.toml and metrics.jsonl. Every "
        "option can also be set in a TOML file (--config; model options in a [model] table); "
        "flags override it. Under `torchrun --nproc-per-node N melodia train ...` the batch is "
        "split across N processes (DistributedDataParallel).",
        epilog="example: melodia train runs/maestro -o runs/piano --steps 20000 --batch-size 64\n"
        "resume:  melodia train -o runs/piano --resume\n"
        "mix:     melodia train --data runs/maestro:0.7 --data runs/bach:0.3 -o runs/mixed\n"
        "         (the first dataset's validation split scores the run)\n"
        "stages:  melodia train runs/maestro -o runs/tuned --init runs/pretrained/best.pt\n"
        "all 12 keys: --transpose 6 (every crop moved by -6..+6 semitones)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("data", nargs="?", type=Path, default=None,
                   help="dataset directory from `melodia prepare` (may come from --config, or "
                   "from the run's config.toml with --resume)")
    p.add_argument("--data", dest="mix", action="append", default=None, metavar="DIR[:WEIGHT]",
                   help="a dataset to train on; repeat to mix corpora, with weights as chances "
                   "per crop (all or none weighted); the first is validated on")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="run directory (config.toml, metrics.jsonl, last.pt, best.pt)")
    p.add_argument("--init", default=None, metavar="CKPT",
                   help="start from this checkpoint's weights (same model shape): pretrain on "
                   "scores, then fine-tune on performances")
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
    ]:
        t.add_argument(flag, type=kind, default=None, help=text)
    t.add_argument("--controls", action=argparse.BooleanOptionalAction, default=None,
                   help="condition on note density and pitch-class histogram (default on)")
    t.add_argument("--note-state", action=argparse.BooleanOptionalAction, default=None,
                   help="feed the sounding notes and their age at every step (default on)")
    t.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="mixed precision on CUDA (default on)")
    m = p.add_argument_group("model (default 3 x 512 LSTM, tied 512-d embeddings)")
    m.add_argument("--layers", dest="model.num_layers", type=int, metavar="N", default=None)
    m.add_argument("--hidden-size", dest="model.hidden_size", type=int, metavar="N", default=None)
    m.add_argument("--embed-dim", dest="model.embed_dim", type=int, metavar="N", default=None)
    m.add_argument("--dropout", dest="model.dropout", type=float, metavar="P", default=None)
    m.add_argument("--tie-embeddings", dest="model.tie_embeddings", default=None,
                   action=argparse.BooleanOptionalAction)


def _run_train(args: argparse.Namespace) -> int:
    import os

    from melodia.train import run_config, train

    skip = {"command", "verbose", "data", "mix", "output", "config", "resume", "quiet"}
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
    config = run_config(data, args.output, args.config, overrides, resume=args.resume)
    result = train(config, resume=args.resume, progress=not args.quiet)
    if os.environ.get("RANK", "0") == "0":
        _print(f"trained {result.step} steps; best validation {result.best_nll:.4f} nats/event; "
               f"checkpoints in {result.run_dir}")
    return 0


_EVALUATE_DESCRIPTION = """\
Two forms.

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
drums get only note_density, polyphony, silence_share, pitch_mean/std/range (kit pieces),
velocity_mean/std, ioi_median, chord_repetition and grid16. A group is compared (overlaps and
classifier test) when both sides have at least --min-excerpts excerpts of it, from at least 5
files (one per classifier fold); the others are listed as skipped, with the counts.

--styles REAL_DIR --generated GEN_DIR (both laid out as DIR/<style>/*.mid): a style classifier.
A logistic regression on every instrument group's statistics of each excerpt is trained on the
real music; a file's style is the likeliest over its excerpts. Printed: its accuracy on real
files, cross-validated with the folds grouped by file (should be well above chance), and the
share of generated files assigned the style of their folder, per style and overall.
Needs pip install 'melodia[eval]' (scipy, scikit-learn)."""


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a model's NLL on a dataset, or compare generated MIDI with real MIDI",
        description=_EVALUATE_DESCRIPTION,
        epilog="examples:\n  melodia evaluate runs/piano/best.pt runs/maestro --split test\n"
        "  melodia evaluate --generated samples/ --reference maestro/ --plot stats.png\n"
        "  melodia evaluate --generated band_samples/ --reference rock/ --by-instrument\n"
        "  melodia evaluate --styles real_by_style/ --generated generated_by_style/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", nargs="?", default=None,
                   help="piano or band (the shipped models), a checkpoint, or a run directory "
                   "(uses best.pt)")
    p.add_argument("data", type=Path, nargs="?", default=None,
                   help="dataset directory from `melodia prepare`")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    n = p.add_argument_group("model NLL (MODEL DATA)")
    n.add_argument("--split", choices=("train", "validation", "test"), default="test")
    n.add_argument("--baselines", default="1,3,4,5", metavar="N,N,...",
                   help="n-gram orders to compare with, 1 = unigram, '' = none (default 1,3,4,5)")
    n.add_argument("--segment-events", type=_number(0, kind=int), default=2048,
                   help="events per scored segment, 0 = whole files (default 2048)")
    n.add_argument("--max-events", type=int, default=None, help="score at most this many events")
    n.add_argument("--batch-size", type=int, default=8,
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
    m.add_argument("--max-excerpts", type=int, default=None, metavar="N",
                   help="at most N excerpts per file, the first ones (default all)")
    m.add_argument("--encoding", choices=ENCODING_NAMES, default=None,
                   help="encoding both sides go through before measuring (default piano; band "
                   "with --by-instrument or --styles)")
    m.add_argument("--workers", type=int, default=0,
                   help="processes measuring files, 0 = one per CPU (default 0)")
    m.add_argument("--seed", type=int, default=0,
                   help="seed of the classifier's subsampling and folds (default 0)")
    m.add_argument("--plot", type=Path, default=None, metavar="OUT.png",
                   help="also draw the distributions of every statistic (needs matplotlib)")
    b = p.add_argument_group("band music (--by-instrument, --styles)")
    b.add_argument("--by-instrument", action="store_true",
                   help="compare instrument group by group (drums, bass, guitar, keys...)")
    b.add_argument("--min-excerpts", type=int, default=5, metavar="N",
                   help="compare a group when both sides have N excerpts of it (default 5)")
    b.add_argument("--grid-tolerance-ms", type=float, default=20.0, metavar="MS",
                   help="an onset this close to a 16th-note position is on the grid (default 20)")
    b.add_argument("--styles", type=Path, default=None, metavar="REAL_DIR",
                   help="real music as REAL_DIR/<style>/*.mid: train a style classifier and "
                   "check that --generated (GEN_DIR/<style>/*.mid) has the asked-for styles")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_evaluate(args: argparse.Namespace) -> int:
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
    from melodia.evaluate import evaluate
    from melodia.generation import resolve_model

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
                      batch_size=args.batch_size, device=device, progress=not args.quiet)
    print(json.dumps(report.to_dict(), indent=1) if args.json else report.table())
    return 0


def _run_evaluate_music(args: argparse.Namespace) -> int:
    import time

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
    from melodia.evaluate.band import BandEvalConfig

    if args.encoding not in (None, "band"):
        raise MelodiaError("instrument groups need the band encoding (--encoding band)")
    try:
        return BandEvalConfig(excerpt_s=args.excerpt_seconds, max_excerpts=args.max_excerpts,
                              seed=args.seed, workers=args.workers,
                              min_excerpts=args.min_excerpts,
                              grid_tolerance_s=args.grid_tolerance_ms / 1000.0)
    except ValueError as err:
        raise MelodiaError(str(err)) from None


def _run_evaluate_band(args: argparse.Namespace) -> int:
    from melodia.evaluate.band import compare_by_group

    if args.generated is None or args.reference is None:
        raise MelodiaError("--by-instrument needs both --generated DIR and --reference DIR")
    if args.plot is not None:
        raise MelodiaError("--plot draws one comparison; it is not available with "
                           "--by-instrument")
    report = compare_by_group(args.generated, args.reference, config=_band_config(args),
                              progress=not args.quiet)
    print(json.dumps(report.to_dict(), indent=1) if args.json else report.table())
    return 0


def _run_evaluate_styles(args: argparse.Namespace) -> int:
    from melodia.evaluate.styles import style_accuracy, style_table

    if args.reference is not None:
        raise MelodiaError("--styles REAL_DIR takes the place of --reference")
    result = style_accuracy(args.styles, args.generated, config=_band_config(args),
                            progress=not args.quiet)
    print(json.dumps(result, indent=1) if args.json else style_table(result))
    return 0


# ---------------------------------------------------------------------------------- generate


def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="write new music with a trained model (default: the shipped piano model)",
        description="Generate music event by event and write it as MIDI. With no options: 10 s "
        "of solo piano from the model that ships with melodia, written to "
        "melodia-piano-DATE-TIME.mid in the current directory. The same --seed (printed when "
        "you give none) with the same options gives the same music. A primer (MIDI file, or "
        "pitches such as 60,64,67) is played first and continued.",
        epilog="examples:\n"
        "  melodia generate --seconds 30 --audio piece.wav\n"
        "  melodia generate --primer intro.mid --temperature 0.9 --top-p 0.95 -o more.mid\n"
        "  melodia generate --sampler embedding --noise 2 --key 'D minor' --density 8\n"
        "  melodia generate --model runs/piano --num 4 --beam 4 --seed 1\n"
        "band:\n"
        "  melodia generate --model band --list-styles\n"
        "  melodia generate --model band --style metal --tempo 160 --lineup drums,bass,guitar,guitar"
        " \\\n      --randomness 0.2 --bars 16 -o band.mid --audio band.wav\n"
        "  melodia generate --model band --temperature drums=0.8,guitar=1.1\n"
        "  melodia render band.mid --stems stems/     (one audio file per instrument)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="MIDI file to write (default melodia-MODEL-DATE-TIME.mid; with --num K, "
                   "NAME-1.mid ... NAME-K.mid); an audio name (x.wav, .flac, .ogg) writes x.mid "
                   "and renders x.wav, as --audio would")
    p.add_argument("--model", default="piano",
                   help="piano, band (if shipped), a checkpoint file or a run directory "
                   "(default piano)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=seconds_float, default=None,
                        help="seconds of new music, up to 86400 (default 10)")
    length.add_argument("--events", type=positive_int, default=None,
                        help="number of new events instead")
    p.add_argument("--num", type=positive_int, default=1,
                   help="pieces to generate at once (default 1)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: a fresh one)")
    _add_music_options(p)
    p.add_argument("--beam", type=positive_int, default=1,
                   help="beam size; > 1 runs beam search (it maximises likelihood: on the "
                   "shipped piano model it tends to loop on one note)")
    p.add_argument("--branch-factor", type=positive_int, default=2,
                   help="beam search: branches per beam entry (default 2)")
    o = p.add_argument_group("output and speed")
    o.add_argument("--audio", type=Path, default=None, metavar="OUT.wav",
                   help="also render audio with FluidSynth (needs melodia[audio])")
    o.add_argument("--plot", type=Path, default=None, metavar="OUT.png",
                   help="also draw a piano roll (needs matplotlib)")
    o.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                   help="fp32, or int8 LSTM weights (NLL within ~1%%): helps large models "
                   "(3 x 512 LSTM: 4.5x faster), little gain on small ones such as the shipped "
                   "2 x 512 piano; measure with tests/benchmarks/bench_sample.py")


def _add_music_options(p: argparse.ArgumentParser) -> None:
    """Sampling, context, controls and band options: shared by generate and stream."""
    s = p.add_argument_group("sampling")
    s.add_argument("--sampler", choices=("probability", "embedding"), default="probability",
                   help="pick events from the softmax, or by perturbing the predicted embedding "
                   "and taking the nearest token (default probability)")
    s.add_argument("--temperature", default="1.0", metavar="T|INSTRUMENT=T,...",
                   help="softmax temperature, 0 = greedy (default 1.0); band models also take "
                   "one per instrument, e.g. drums=0.8,guitar=1.1 (others: 1.0)")
    s.add_argument("--top-k", type=_number(0, kind=int), default=0,
                   help="keep the K likeliest events, 0 = all")
    s.add_argument("--top-p", type=_number(0.0, 1.0, open_low=True), default=1.0,
                   help="nucleus: keep the likeliest events holding this probability (default 1)")
    s.add_argument("--noise", type=non_negative_float, default=None,
                   help="embedding sampler: one noise scale for every event, 0 = greedy; about 1 "
                   "or less loops like greedy decoding (default: the model's calibrated scale "
                   "per event type, or 2.5 for a model without them)")
    s.add_argument("--noise-kind", choices=("gaussian", "vmf"), default="gaussian",
                   help="embedding sampler: Gaussian or von Mises-Fisher noise (default gaussian)")
    c = p.add_argument_group("context and controls")
    c.add_argument("--primer", default=None, metavar="FILE|PITCHES",
                   help="a MIDI file to continue (its last --primer-seconds), or MIDI pitches "
                   "struck together, e.g. 60,64,67")
    c.add_argument("--primer-seconds", type=positive_float, default=5.0,
                   help="how much of a primer file to keep (default 5)")
    c.add_argument("--density", type=positive_float, default=None,
                   help="notes per second, e.g. 4 (calm) to 16 (busy); models trained with "
                   "controls. Unset: a density drawn (by seed) from the model's training music")
    c.add_argument("--key", default=None,
                   help="key, e.g. C, F#, 'Bb minor', Am (models trained with controls). Unset: "
                   "the pitch classes of a passage of the training music, drawn by seed")
    c.add_argument("--no-corpus-controls", dest="corpus_controls", action="store_false",
                   help="leave unset controls absent instead of drawing them from the corpus")
    b = p.add_argument_group("band (--model band): unset ones are drawn, by seed, from the "
                             "training files (of the style, when given)")
    b.add_argument("--style", default=None,
                   help="a style the model learned from its corpus's folders (--list-styles)")
    b.add_argument("--tempo", type=positive_float, default=None, metavar="BPM",
                   help="beats per minute: the band plays at it; for any model it is the tempo "
                   "written into the MIDI file (default 120) and the beat clock's")
    b.add_argument("--lineup", default=None, metavar="INSTRUMENTS",
                   help="who plays, e.g. drums,bass,guitar,guitar: drums, GM families (bass, "
                   "guitar, keys, organ, strings, brass, sax, synth...), GM names ('overdriven "
                   "guitar') or programs 0-127; nothing outside it plays")
    b.add_argument("--randomness", default=None, metavar="R|INSTRUMENT=R,...",
                   help="0..1, how adventurous (0.5 = the model's own distribution; "
                   "probability sampler: temperature 0.6+0.8R, embedding: noise x 2R), or per "
                   "instrument, e.g. drums=0.2,guitar=0.6")
    b.add_argument("--bars", type=positive_int, default=None,
                   help="length in 4/4 bars at the tempo (instead of --seconds)")
    b.add_argument("--list-styles", action="store_true",
                   help="print the model's styles with their usual line-ups and tempos, and exit")


def _generate_config(args: argparse.Namespace, **length) -> "GenerateConfig":
    """A GenerateConfig from the options of :func:`_add_music_options` (plus ``length``)."""
    from melodia.generation import GenerateConfig
    from melodia.sample import SamplerConfig

    temperature, by_instrument = _number_or_table(args.temperature, "--temperature")
    randomness, random_by = _number_or_table(args.randomness, "--randomness")
    beam = {"beam_size": length.pop("beam", 1), "branch_factor": length.pop("branch_factor", 2)}
    try:
        return GenerateConfig(
            **length, seed=args.seed, primer_seconds=args.primer_seconds,
            density=args.density, key=args.key, precision=args.precision,
            corpus_controls=args.corpus_controls, style=args.style, tempo=args.tempo,
            lineup=args.lineup, randomness=random_by if random_by is not None else randomness,
            instrument_temperature=by_instrument,
            sampler=SamplerConfig(sampler=args.sampler, temperature=temperature,
                                  top_k=args.top_k, top_p=args.top_p, noise=args.noise,
                                  noise_kind=args.noise_kind, **beam))
    except ValueError as err:
        raise MelodiaError(str(err)) from None


def _number_or_table(value: str | None, flag: str) -> tuple[float | None, str | None]:
    """``"0.8"`` -> (0.8, None); ``"drums=0.8,guitar=1.1"`` -> (None or 1.0, the table)."""
    if value is None:
        return None, None
    if "=" in value:
        return (1.0 if flag == "--temperature" else None), value
    try:
        number = float(value)
    except ValueError:
        raise MelodiaError(f"{flag} takes a number or INSTRUMENT=VALUE,... (e.g. "
                           f"drums=0.8,guitar=1.1), not {value!r}") from None
    if not (math.isfinite(number) and number >= 0):
        raise MelodiaError(f"{flag} must be a finite number >= 0, not {value}")
    return number, None


def _list_styles(model: str) -> int:
    from collections import Counter

    from melodia.band import instrument_name
    from melodia.generation import load_model

    checkpoint = load_model(model)
    info = checkpoint.extra.get("band")
    if not info:
        raise MelodiaError(f"{model} is not a band model: it has no styles")
    if not info.get("styles"):
        print("this band model was trained without style labels")
    for style in info.get("styles") or []:
        rows = [r for r in info.get("lineups") or [] if r.get("style") == style]
        tempos = sorted(r["qpm"] for r in rows if r.get("qpm"))
        common = Counter(i for r in rows for i in r["instruments"]).most_common(5)
        tempo = f"{tempos[0]:.0f}-{tempos[-1]:.0f} BPM" if tempos else "tempo unknown"
        names = ", ".join(instrument_name(i) for i, _ in common)
        print(f"{style:14s} {len(rows):3d} files, {tempo}; mostly {names}")
    return 0


def _numbered(path: Path | None, index: int, count: int) -> Path | None:
    if path is None or count == 1:
        return path
    return path.with_name(f"{path.stem}-{index + 1}{path.suffix}")


def _run_generate(args: argparse.Namespace) -> int:
    import re
    import time

    from melodia.generation import GenerateConfig, generate_ids
    from melodia.midi import write_midi
    from melodia.sample import SamplerConfig

    if args.list_styles:
        return _list_styles(args.model)
    primer = args.primer
    if primer is not None and re.fullmatch(r"\s*\d+(\s*,\s*\d+)*\s*", primer):
        primer = [int(x) for x in primer.split(",")]
    elif primer is not None:
        primer = Path(primer)
    if args.bars is not None and args.seconds is not None:
        raise MelodiaError("give --seconds or --bars, not both")
    config = _generate_config(args, seconds=args.seconds if args.seconds is not None else 10.0,
                              events=args.events, num=args.num, bars=args.bars,
                              beam=args.beam, branch_factor=args.branch_factor)
    start = time.perf_counter()
    result = generate_ids(args.model, config, primer)
    elapsed = time.perf_counter() - start
    name = Path(str(args.model)).stem if args.model not in ("piano", "band") else args.model
    output = args.output or Path(f"melodia-{name}-{time.strftime('%Y%m%d-%H%M%S')}.mid")
    if output.suffix.lower() in (".wav", ".flac", ".ogg"):  # -o x.wav: x.mid and x.wav
        if args.audio is None:
            args.audio = output
        output = output.with_suffix(".mid")
    for path in (output, args.audio, args.plot):
        if path is not None:
            _output(path)
    new_events = sum(len(p) - result.primer_events for p in result.pieces)
    if result.band is not None:
        b = result.band
        _print(f"band: {b['style'] or 'no style'} at {b['qpm']:.0f} BPM: "
               f"{', '.join(b['names']) or 'any instruments'}")
    for i, score in enumerate(result.scores()):
        path = write_midi(score, _numbered(output, i, args.num))
        _print(f"wrote {score.end_s:.1f} s ({score.note_count} notes) to {path}")
        if args.audio is not None:
            from melodia.render import render

            render(path, _numbered(args.audio, i, args.num))
            _print(f"  audio: {_numbered(args.audio, i, args.num)}")
        if args.plot is not None:
            from melodia.plot import plot_piano_roll

            plot_piano_roll(path, _numbered(args.plot, i, args.num))
            _print(f"  piano roll: {_numbered(args.plot, i, args.num)}")
    _print(f"seed {result.seed}; {new_events} events in {elapsed:.2f} s "
           f"({new_events / max(elapsed, 1e-9):,.0f} events/s)")
    if args.audio is None:
        _print(f"listen: melodia render {_numbered(output, 0, args.num)}")
    return 0


# ------------------------------------------------------------------------------------ stream


def _add_stream(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stream",
        help="play a model live into a MIDI port (a DAW, a synth), or answer a player",
        description="Play endless music into a MIDI port: pick 'melodia' as a MIDI input in your "
        "DAW (Ableton, Logic, Reaper, Bitwig) or synth and hear it. Generation runs a little "
        "ahead of playback; Ctrl-C (or SIGTERM, or --seconds) stops it, and every note that "
        "sounds gets its note-off. With --listen, melodia waits for a phrase on an input port, "
        "answers it when you stop for a bar, and listens again. Ports: ALSA on Linux desktops, "
        "JACK where there is no ALSA sequencer, CoreMIDI on macOS; on Windows, create a "
        "loopMIDI port and pass --port (list them with `melodia ports`).",
        epilog="examples:\n"
        "  melodia stream                                    (virtual port 'melodia', until Ctrl-C)\n"
        "  melodia stream --model band --style funk --tempo 100 --clock-out --seconds 120\n"
        "  melodia stream --port 'FLUID Synth' --temperature 0.9\n"
        "  melodia stream --listen 'Keystation' --respond-seconds 8   (call and response)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    w = p.add_argument_group("where")
    w.add_argument("--virtual", default=None, metavar="NAME",
                   help="name of the virtual output port to open (default melodia)")
    w.add_argument("--port", default=None, metavar="NAME",
                   help="connect to an existing output port whose name contains NAME instead")
    w.add_argument("--api", choices=("alsa", "jack", "coremidi", "windows_mm"), default=None,
                   help="MIDI backend (default: ALSA if its sequencer works, else JACK; "
                   "CoreMIDI on macOS, Windows MM on Windows)")
    w.add_argument("--channel", type=int, default=1,
                   help="MIDI channel 1-16 of the piano / the band's first part (drums: 10)")
    p.add_argument("--model", default="piano",
                   help="piano, band, a checkpoint file or a run directory (default piano)")
    p.add_argument("--seconds", type=seconds_float, default=None,
                   help="stop after this long (default: play until Ctrl-C)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: a fresh one)")
    p.add_argument("--clock-out", action="store_true",
                   help="also send MIDI beat clock (24 per quarter, start/stop) at --tempo "
                   "(default 120) so a DAW can follow")
    p.add_argument("--lookahead", type=positive_float, default=0.5, metavar="SECONDS",
                   help="how far generation runs ahead of playback (default 0.5)")
    p.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                   help="int8 LSTM weights help large models (3 x 512: 4.5x faster); little "
                   "gain on the shipped 2 x 512 piano (measure: tests/benchmarks/bench_sample.py)")
    r = p.add_argument_group("call and response")
    r.add_argument("--listen", default=None, metavar="PORT",
                   help="answer what is played on this input port (virtual:NAME opens a "
                   "virtual input port instead); a phrase ends after a bar of silence at the "
                   "tempo")
    r.add_argument("--respond-seconds", type=seconds_float, default=8.0,
                   help="length of each answer (default 8)")
    r.add_argument("--rounds", type=int, default=None, help="answers before stopping")
    r.add_argument("--trigger-cc", type=int, default=None, metavar="CC",
                   help="a control change number that ends a phrase at once (e.g. 64)")
    _add_music_options(p)


def _run_stream(args: argparse.Namespace) -> int:
    from melodia.live.stream import StreamConfig, stream

    if not 1 <= args.channel <= 16:
        raise MelodiaError("--channel must be 1..16")
    if args.list_styles:
        return _list_styles(args.model)
    generate = _generate_config(args, seconds=1.0)
    if args.bars is not None:  # 4/4 bars at the tempo
        if args.seconds is not None:
            raise MelodiaError("give --seconds or --bars, not both")
        args.seconds = args.bars * 240.0 / (args.tempo or 120.0)
    if args.primer is not None:
        raise MelodiaError("stream takes no --primer; use --listen to answer a player")
    try:
        config = StreamConfig(model=args.model, virtual=args.virtual or "melodia",
                              port=args.port, api=args.api, seconds=args.seconds,
                              channel=args.channel - 1, clock_out=args.clock_out,
                              lookahead_s=args.lookahead, listen=args.listen,
                              respond_seconds=args.respond_seconds, rounds=args.rounds,
                              trigger_cc=args.trigger_cc, generate=generate)
    except ValueError as err:
        raise MelodiaError(str(err)) from None
    where = args.port or f"virtual port '{config.virtual}'"
    _print(f"streaming {args.model} into {where}" + (f", answering {args.listen}"
                                                     if args.listen else "")
           + ("; Ctrl-C stops" if args.seconds is None else f" for {args.seconds:g} s"))
    result = stream(config)
    if isinstance(result, list):
        for i, r in enumerate(result, 1):
            latency = "-" if r.latency_s is None else f"{r.latency_s * 1000:.0f} ms"
            _print(f"round {i}: heard {r.phrase_notes} notes, answered after {latency}")
    else:
        jitter = sorted(result.jitter_s) or [0.0]
        p99 = jitter[min(len(jitter) - 1, int(0.99 * len(jitter)))] * 1000
        if not result.sent:
            _print("stopped before anything played")
            return 0
        _print(f"played {result.duration_s:.1f} s: {result.notes} notes, {result.sent} "
               f"messages; send jitter p99 {p99:.2f} ms, {result.underruns} underruns")
    return 0


# ------------------------------------------------------------------------------------- ports


def _add_ports(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ports",
        help="list the MIDI ports melodia can read from and play to",
        description="Print the MIDI API in use and its ports. Inputs are ports melodia can read "
        "from (keyboards, other programs' outputs); outputs are ports it can play to (synths).",
    )
    p.add_argument("--api", metavar="API",
                   help="alsa, jack, coremidi or windows_mm (default: ALSA if its sequencer works, "
                   "else JACK if a server runs, CoreMIDI on macOS, Windows MM on Windows)")


def _run_ports(args: argparse.Namespace) -> int:
    from melodia.live.ports import list_ports

    found = list_ports(args.api)
    print(f"api: {found['api']}")
    for kind in ("inputs", "outputs"):
        print(f"{kind}:" + ("" if found[kind] else " none"))
        for name in found[kind]:
            print(f"  {name}")
    return 0


# ------------------------------------------------------------------------------------ export


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


def _run_export(args: argparse.Namespace) -> int:
    from melodia.checkpoint import export_model

    out = export_model(args.source, args.out, dtype="float32" if args.fp32 else "float16")
    print(out)
    return 0


# -------------------------------------------------------------------------------------- main

_COMMANDS = ["encode", "decode", "prepare", "render", "plot", "train", "evaluate", "generate",
             "ports", "stream", "export"]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: ``melodia CMD: error: ...``."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("melodia")
    except PackageNotFoundError:
        from melodia import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="melodia",
        description="Learn music from MIDI and play it back (Performance RNN in PyTorch).",
        epilog="Run `melodia COMMAND --help` for the options of each command.",
    )
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log debug messages (and show the traceback of an error)")
    parser.add_argument("--version", action="version", version=f"melodia {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        globals()[f"_add_{name}"](sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # a usage error (one line, already printed) returns 2; --help 0
        if stop.code == 2:
            return 2
        raise
    # melodia's own messages at INFO; other libraries' (torch's) only when they warn
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("melodia").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        code = globals()[f"_run_{args.command}"](args)
        sys.stdout.flush()  # so a closed pipe shows up here, not at exit
        return code
    except BrokenPipeError:  # `melodia encode f.mid | head -1`: the reader has gone
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # stdout without a file descriptor
            pass
        return 0
    except MelodiaError as err:
        _print(f"melodia {args.command}: error: {err}")
        return 2
    except (OSError, ValueError) as err:
        if args.verbose:
            raise
        _print(f"melodia {args.command}: error: {_oserror_text(err)}")
        return 2
    except KeyboardInterrupt:
        _print("interrupted")
        return 130


def _oserror_text(err: Exception) -> str:
    """One line for an OSError (naming its path) or a ValueError from a config check."""
    if isinstance(err, OSError) and err.filename is not None:
        return f"{err.filename}: {err.strerror or err}"
    return " ".join(str(err).split()) or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
