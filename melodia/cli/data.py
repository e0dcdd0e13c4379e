"""``melodia encode``, ``decode`` and ``prepare``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from melodia.cli.common import ENCODING_NAMES, _number, _output, _print, midi_output
from melodia.errors import MelodiaError
from melodia.util.knobs import argument


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
    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
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
    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.encoding import get_encoding, load_tokens
    from melodia.midi import write_midi

    _output(midi_output(args.output))
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
    p.add_argument("--workers", type=argument("workers"), default=None,
                   help="processes (default: CPU count)")
    p.add_argument("--valid-fraction", type=_number(0.0, 1.0), default=0.05,
                   help="share of non-MAESTRO files held out for validation (default 0.05)")
    p.add_argument("--test-fraction", type=_number(0.0, 1.0), default=0.05,
                   help="share of non-MAESTRO files held out for test (default 0.05)")
    p.add_argument("--no-sustain", action="store_true", help="do not apply the sustain pedal")
    p.add_argument("--max-files", type=argument("max_files"), default=None, metavar="N",
                   help="encode at most N pieces, the first in sorted order (e.g. for music21:all)")
    p.add_argument("--labels-from-folders", action="store_true",
                   help="style label of each file = its top folder below the source folder "
                   "(SRC/metal/a.mid -> metal), stored as the record's \"style\" and listed in "
                   "the manifest's \"styles\"; files directly in SRC get none (null)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    s = p.add_argument_group("scores (MusicXML, ABC, kern, music21:)")
    s.add_argument("--humanize", type=argument("humanize"), default=0.0, metavar="SECONDS",
                   help="std of random onset jitter in seconds, e.g. 0.01, with velocity jitter "
                   "(std 6); seeded, so reruns match (default 0: off)")
    s.add_argument("--humanize-seed", type=int, default=0, metavar="N",
                   help="seed of the humanisation, mixed with each piece's hash (default 0)")
    s.add_argument("--cache-dir", type=Path, default=None,
                   help="folder of converted scores (default $XDG_CACHE_HOME/melodia/scores)")
    s.add_argument("--no-cache", action="store_true",
                   help="parse every score with music21 again, and write no cache")


def _run_prepare(args: argparse.Namespace) -> int:
    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.corpus.preparation import PrepareConfig, prepare
    from melodia.corpus.scores import ScoreConfig
    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.encoding import get_encoding

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
            import shutil  # leave nothing behind

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
