"""``melodia studio``: a local web page where a musician generates, hears, sees and keeps music.

The command (here) serves :mod:`melodia.cli.studio.app` (the page and its JSON API, on Starlette
and uvicorn: ``pip install 'melodia[studio]'``) over :mod:`melodia.cli.studio.jobs` (settings
checked by the command line's own parser and run by its own commands, one generation at a time
with progress, cancel and a time limit, a history). The page's files are in ``page/``. Its
history is kept on disk (:mod:`melodia.cli.studio.history`) and only the musician's page drives
it (:mod:`melodia.cli.studio.door`: Host, Origin and a token, as Jupyter does). The studio is a
face of the command line, so it lives beside it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from melodia.cli.common import _print, positive_float
from melodia.cli.given import _run_accompany, _run_infill
from melodia.cli.restyle import _run_restyle
from melodia.cli.make import _run_generate
from melodia.errors import MelodiaError

def _add_studio(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "studio",
        help="a web page on this computer to generate, hear, see and keep music",
        description="Start a local web server and open its page: knobs for generate (and "
        "accompany, infill, restyle, song form), progress with a cancel button, a piano roll with a play "
        "head, the audio rendered by FluidSynth, Web MIDI output where the browser has it, and a "
        "history of what was made with the melodia command line that makes it again. Files are "
        "written only under --out, where the history is kept: a restart shows everything made "
        "before. Only the page the studio opens can drive it: the address it prints carries a "
        "token, and requests from other sites are refused. It listens on 127.0.0.1 only unless "
        "--host and --allow-remote say otherwise.",
        epilog="examples:\n  melodia studio\n  melodia studio --models runs/ --out my-music/\n"
        "  melodia studio --no-browser --port 8765",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this computer only; "
                   "another address needs --allow-remote)")
    p.add_argument("--allow-remote", action="store_true",
                   help="let --host be an address other computers reach (anyone with the "
                   "printed address, token included, can then make files under --out)")
    p.add_argument("--port", type=int, default=0,
                   help="port to listen on (default: a free one, printed)")
    p.add_argument("--out", type=Path, default=Path("melodia-studio"), metavar="DIR",
                   help="where the MIDI and audio files go (default ./melodia-studio)")
    p.add_argument("--models", type=Path, default=None, metavar="DIR",
                   help="also offer the checkpoints (.pt), run folders and exported models "
                   "found in DIR")
    p.add_argument("--no-browser", action="store_true", help="print the address; open nothing")
    p.add_argument("--time-limit", type=positive_float, default=300.0, metavar="SECONDS",
                   help="a generation is stopped after this long (default 300)")


def found_models(folder: Path | None) -> dict[str, str]:
    """``piano``, ``band`` and the models in ``folder``: ``*.pt`` files, run folders (with
    ``best.pt``) and exported folders (with ``config.json``), by name."""
    models = {"piano": "piano", "band": "band"}
    if folder is None:
        return models
    if not folder.is_dir():
        raise MelodiaError(f"--models {folder}: not a folder")
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".pt" and path.is_file() and path.name not in ("last.pt",):
            name = path.stem if path.stem != "best" else path.parent.name
        elif path.is_dir() and (path / "config.json").is_file() and \
                (path / "model.safetensors").is_file():
            name = path.name
        else:
            continue
        models.setdefault(name, str(path.resolve()))
    return models


def _run_studio(args: argparse.Namespace) -> int:
    import socket
    import webbrowser

    try:  # deferred: the studio's web stack is an extra, and keeps `melodia --help` fast
        import uvicorn

        from melodia.cli.studio.app import create_app
        from melodia.cli.studio.door import Door, is_loopback
        from melodia.cli.studio.jobs import Refusing, Studio
    except ImportError as err:
        raise MelodiaError(f"the studio needs its web server ({err.name} is missing): "
                           "pip install 'melodia[studio]'") from None
    if not 0 <= args.port <= 65535:
        raise MelodiaError(f"--port must be 0..65535, not {args.port}")
    if not is_loopback(args.host):
        if not args.allow_remote:
            raise MelodiaError(f"--host {args.host} lets other computers reach the studio: add "
                               "--allow-remote if that is what you want")
        _print(f"warning: listening on {args.host}: other computers on the network can reach "
               "the studio; whoever has the printed address (its token) can make it write "
               "files under --out")
    from melodia.cli import build_parser  # deferred: melodia.cli imports this command

    commands = {"generate": _run_generate, "accompany": _run_accompany, "infill": _run_infill,
                "restyle": _run_restyle}
    studio = Studio(args.out, found_models(args.models),
                    lambda argv: build_parser(Refusing).parse_args(argv), commands,
                    args.time_limit)
    for line in studio.skipped:
        _print(f"studio: {line}")
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as err:
        raise MelodiaError(f"cannot listen on {args.host}:{args.port}: {err.strerror}") from None
    sock.listen(128)  # requests queue from now on, so the address printed already answers
    port = sock.getsockname()[1]
    door = Door.for_host(args.host, port)
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{port}/?token={door.token}"
    earlier = f", {len(studio.jobs)} earlier jobs" if studio.jobs else ""
    _print(f"melodia studio at {url} (files in {studio.out}{earlier}); Ctrl-C stops")
    if not args.no_browser:
        webbrowser.open(url)
    config = uvicorn.Config(create_app(studio, door), log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
    return 0
