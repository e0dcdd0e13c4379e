"""The ``melodia`` command line: parse arguments, build a config, call a library function.

Each subcommand is a pair of functions: ``_add_<name>(subparsers)`` declares its arguments and
``_run_<name>(args)`` calls the library. Only this module prints for humans; the library logs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from melodia.errors import MelodiaError

ENCODING_NAMES = ("piano", "band")


def _print(*parts: object) -> None:
    print(*parts, file=sys.stderr)


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
    args.output.write_text(json.dumps(payload))
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
        help="encode a corpus of MIDI files into token shards",
        description="Walk folders of MIDI files, encode them in parallel and write memory-mappable "
        "token shards plus manifest.json. A folder holding maestro-v*.csv/.json uses MAESTRO's "
        "train/validation/test split; other files are split by a hash of their content, so adding "
        "files never moves old ones. Corrupt files are skipped and listed in the manifest. "
        "Re-running on the same output only encodes files it has not seen.",
    )
    p.add_argument("sources", nargs="+", type=Path, help="MIDI files or folders (searched recursively)")
    p.add_argument("-o", "--output", type=Path, required=True, help="dataset directory")
    p.add_argument("--encoding", choices=ENCODING_NAMES, default="piano")
    p.add_argument("--workers", type=int, default=None, help="processes (default: CPU count)")
    p.add_argument("--valid-fraction", type=float, default=0.05,
                   help="share of non-MAESTRO files held out for validation (default 0.05)")
    p.add_argument("--test-fraction", type=float, default=0.05,
                   help="share of non-MAESTRO files held out for test (default 0.05)")
    p.add_argument("--no-sustain", action="store_true", help="do not apply the sustain pedal")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_prepare(args: argparse.Namespace) -> int:
    from melodia.corpus import PrepareConfig, prepare
    from melodia.encoding import get_encoding

    config = PrepareConfig(valid_fraction=args.valid_fraction, test_fraction=args.test_fraction,
                           workers=args.workers)
    enc = get_encoding(args.encoding, sustain=not args.no_sustain)
    report = prepare(args.sources, args.output, enc, config, progress=not args.quiet)
    _print(report.summary())
    return 0


# -------------------------------------------------------------------------------------- main

_COMMANDS = ["encode", "decode", "prepare"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="melodia",
        description="Learn music from MIDI and play it back (Performance RNN in PyTorch).",
        epilog="Run `melodia COMMAND --help` for the options of each command.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        globals()[f"_add_{name}"](sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return globals()[f"_run_{args.command}"](args)
    except MelodiaError as err:
        _print(f"melodia {args.command}: error: {err}")
        return 2
    except KeyboardInterrupt:
        _print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
