"""The ``melodia`` command line: parse arguments, build a config, call a library function.

Each subcommand is a pair of functions: ``_add_<name>(subparsers)`` declares its arguments and
``_run_<name>(args)`` calls the library, in one module per command group: ``data`` (encode,
decode, prepare), ``audio`` (render, plot), ``learn`` (train, evaluate, export), ``make``
(generate), ``given`` (accompany, infill), ``restyle``, ``live`` (stream, ports), ``studio`` (the web
page, a package: its server, jobs and page). Only this package prints
for humans; the library logs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from melodia.cli import audio, data, given, learn, live, make, restyle, studio
from melodia.cli.common import _print
from melodia.errors import MelodiaError

_MODULES = {"encode": data, "decode": data, "prepare": data, "render": audio, "plot": audio,
            "train": learn, "evaluate": learn, "export": learn, "generate": make,
            "accompany": given, "infill": given, "restyle": restyle, "ports": live, "stream": live,
            "studio": studio}


_COMMANDS = ["encode", "decode", "prepare", "render", "plot", "train", "evaluate", "generate",
             "accompany", "infill", "restyle", "ports", "stream", "studio", "export"]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: ``melodia CMD: error: ...``."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("melodia")
    except PackageNotFoundError:
        from melodia import __version__  # deferred: only when the package metadata is missing

        return __version__


def build_parser(parser_class: type[argparse.ArgumentParser] | None = None
                 ) -> argparse.ArgumentParser:
    """Every command's parser; ``parser_class`` (default one-line errors and exit) for another
    way to refuse bad options (the studio raises)."""
    parser = (parser_class or _Parser)(
        prog="melodia",
        description="Learn music from MIDI and play it back (Performance RNN in PyTorch).",
        epilog="Run `melodia COMMAND --help` for the options of each command.",
    )
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log debug messages (and show the traceback of an error)")
    parser.add_argument("--version", action="version", version=f"melodia {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        getattr(_MODULES[name], f"_add_{name}")(sub)
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
        code = getattr(_MODULES[args.command], f"_run_{args.command}")(args)
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
