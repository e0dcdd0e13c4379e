"""``melodia stream`` and ``ports``."""

from __future__ import annotations

import argparse
import threading
import time

from melodia.cli.common import _print, positive_float
from melodia.cli.make import _add_music_options, _list_styles
from melodia.cli.worker import _stream_config, _stream_seconds
from melodia.util.knobs import argument


def _add_stream(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stream",
        help="play a model live into a MIDI port (a DAW, a synth), or answer a player",
        description="Play endless music into a MIDI port: pick 'melodia' as a MIDI input in your "
        "DAW (Ableton, Logic, Reaper, Bitwig) or synth and hear it. Generation runs a little "
        "ahead of playback; Ctrl-C (or SIGTERM, or --seconds) stops it, and every note that "
        "sounds gets its note-off. The model runs in a process of its own, so nothing it "
        "does delays a note; each stream keeps the first seconds of the next one with the same "
        "model and options (~/.cache/melodia/headstarts), which then starts at once, the same "
        "music note for note (without --seed, it says the seed it drew). "
        "With --listen, melodia waits for a phrase on an input port, "
        "answers it when you stop for a bar, and listens again. Ports: ALSA on Linux desktops, "
        "JACK where there is no ALSA sequencer, CoreMIDI on macOS; on Windows, create a "
        "loopMIDI port and pass --port (list them with `melodia ports`).",
        epilog="examples:\n"
        "  melodia stream                                    (virtual port 'melodia', until Ctrl-C)\n"
        "  melodia stream --model band --style funk --tempo 100 --clock-out --seconds 120\n"
        "  melodia stream --port 'FLUID Synth' --temperature 0.9\n"
        "  melodia stream --listen 'Keystation' --respond-seconds 8   (call and response)\n"
        "  melodia stream --model band --accompany 'Keystation' --port 'FLUID' \\\n"
        "      --lineup drums,bass --tempo 100   (a band that plays with you)",
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
    w.add_argument("--channel", type=argument("channel"), default=1,
                   help="MIDI channel 1-16 of the piano / the band's first part (drums: 10)")
    p.add_argument("--model", default="piano",
                   help="piano, band, a checkpoint file or a run directory (default piano)")
    p.add_argument("--seconds", type=argument("seconds"), default=None,
                   help="stop after this long (default: play until Ctrl-C)")
    p.add_argument("--seed", type=argument("seed"), default=None,
                   help="random seed (default: a fresh one)")
    p.add_argument("--clock-out", action="store_true",
                   help="also send MIDI beat clock (24 per quarter, start/stop) at --tempo "
                   "(default 120) so a DAW can follow")
    p.add_argument("--lookahead", type=positive_float, default=None, metavar="SECONDS",
                   help="how far generation runs ahead of playback (default 0.5; with "
                   "--accompany 0.25: the band hears the player at most this late)")
    p.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                   help="int8 LSTM weights help large models (3 x 512: 4.5x faster); little "
                   "gain on the shipped 2 x 512 piano (measure: tests/benchmarks/bench_sample.py)")
    r = p.add_argument_group("call and response")
    r.add_argument("--listen", default=None, metavar="PORT",
                   help="answer what is played on this input port (virtual:NAME opens a "
                   "virtual input port instead); a phrase ends after a bar of silence at the "
                   "tempo")
    r.add_argument("--respond-seconds", type=argument("seconds"), default=8.0,
                   help="length of each answer (default 8)")
    r.add_argument("--rounds", type=argument("rounds"), default=None,
                   help="answers before stopping")
    r.add_argument("--trigger-cc", type=argument("trigger_cc"), default=None, metavar="CC",
                   help="a control change number that ends a phrase at once (e.g. 64)")
    a = p.add_argument_group("live accompaniment (--model band)")
    a.add_argument("--accompany", default=None, metavar="PORT",
                   help="play the --lineup with a person playing into this input port "
                   "(virtual:NAME opens a virtual input port instead): melodia counts in a bar "
                   "of clicks at --tempo, then the band plays with what it hears; the player's "
                   "notes are never echoed")
    a.add_argument("--player", default="piano", metavar="INSTRUMENT",
                   help="what the player plays, as the band hears it: a GM family, name or "
                   "program (default piano)")
    a.add_argument("--count-in", type=int, default=1, metavar="BARS",
                   help="bars of clicks before the band comes in (default 1; 0: at once)")
    a.add_argument("--rest-bars", type=float, default=2.0, metavar="BARS",
                   help="the band stops after this many bars without a note from the player "
                   "(default 2; 0: plays on)")
    a.add_argument("--follow-clock", action="store_true",
                   help="take the beat from MIDI clock arriving on the --accompany port (a "
                   "DAW's or drum machine's): the band waits for it, plays at its tempo and "
                   "follows its changes (--tempo: the tempo the band is told, default the "
                   "tempo measured over the clock's first two beats)")
    _add_music_options(p)



def _run_stream(args: argparse.Namespace) -> int:
    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.live.ports import PortError, open_output
    from melodia.live.start import Preload, stop_on_signals

    if args.list_styles:
        return _list_styles(args.model)
    key = _headstart_key(args)
    if key is not None:
        return _stream_apart(args, key)
    stop = threading.Event()
    with stop_on_signals(stop):  # from the moment the port may appear: a stop ends it cleanly
        port, port_error = None, None
        try:
            # the port needs no torch: it opens while torch imports (melodia.live.start)
            with Preload("melodia.live.stream"):
                try:
                    port = open_output(virtual=None if args.port else args.virtual or "melodia",
                                       port=args.port, api=args.api)
                except PortError as err:  # the options' own errors are said first, as ever
                    port_error = err
            config = _stream_config(args)
            if port_error is not None:
                raise port_error
        except BaseException:
            if port is not None:
                port.close()
            raise
        return _stream(args, config, stop, port)


def _headstart_key(args: argparse.Namespace) -> str | None:
    """The name under which this stream's first seconds are kept (melodia.live.headstart);
    None for a stream that waits on a player (accompany, call and response)."""
    if args.listen or args.accompany:
        return None
    from melodia.live.headstart import settings_key

    return settings_key(args.model, vars(args))


def _stream_apart(args: argparse.Namespace, key: str) -> int:
    """A stream that waits on no player: the model in a child process (melodia.cli.worker),
    the port and the player here, with no torch; the kept first seconds of the same stream
    (melodia.live.headstart), if any, play at once."""
    import itertools

    from melodia.cli.worker import start_worker
    from melodia.live.headstart import read_headstart
    from melodia.live.ports import PortError, open_output
    from melodia.live.scheduler import Player
    from melodia.live.start import DRAIN_S, START_DELAY_S, stop_on_signals

    seconds = _stream_seconds(args)
    head = read_headstart(key, args.seed)
    worker = start_worker(args, key, head)
    stop = threading.Event()
    try:
        with stop_on_signals(stop):
            made = worker.messages()
            try:
                port = open_output(virtual=None if args.port else args.virtual or "melodia",
                                   port=args.port, api=args.api)
            except PortError:
                if head is None:  # the options' own errors are said first, as ever
                    next(made, None)
                raise
            try:
                if head is None:  # the model primed before the clock starts, as in stream()
                    first = next(made, None)
                    messages = made if first is None else itertools.chain([first], made)
                else:
                    messages = itertools.chain(head.messages, made)
                _say_streaming(args, args.virtual or "melodia",
                               "" if head is None else f" (seed {head.seed})")
                player = Player(port.send, messages, lookahead_s=args.lookahead or 0.5,
                                start_delay_s=START_DELAY_S)
                result = player.run(until_s=seconds, stop=stop)
            finally:
                time.sleep(DRAIN_S)  # let the backend hand on the last note-offs
                port.close()
    finally:
        worker.close()
    return _report(result)



def _stream(args: argparse.Namespace, config, stop: threading.Event, port) -> int:
    """Play into the open ``port`` (closed at the end) and report."""
    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.live.stream import stream

    _say_streaming(args, config.virtual)
    return _report(stream(config, stop=stop, output=port, own_output=True))


def _say_streaming(args: argparse.Namespace, virtual: str, extra: str = "") -> None:
    where = args.port or f"virtual port '{virtual}'"
    seconds = _stream_seconds(args)
    _print(f"streaming {args.model} into {where}{extra}" + (f", answering {args.listen}"
                                                            if args.listen else "")
           + (f", playing with {args.accompany} after a {args.count_in}-bar count-in"
              if args.accompany else "")
           + ("; Ctrl-C stops" if seconds is None else f" for {seconds:g} s"))


def _report(result) -> int:
    """Say how a stream went: its play statistics, each answer's, or the live band's."""
    if hasattr(result, "entry_s"):  # live accompaniment
        return _report_live(result)
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


def _report_live(run) -> int:
    stats = run.stats
    jitter = sorted(stats.jitter_s) or [0.0]
    p99 = jitter[min(len(jitter) - 1, int(0.99 * len(jitter)))] * 1000
    why = "your port closed" if run.vanished else "stopped"
    tempo = f" at {run.qpm:.1f} BPM" if run.qpm else ""
    _print(f"{why}: heard {run.player_notes} notes; the band played {stats.notes} notes{tempo} in "
           f"{stats.duration_s:.1f} s (count-in included); send jitter p99 {p99:.2f} ms, "
           f"{stats.underruns} underruns")
    if run.entry_s is not None:
        _print(f"the band came in {run.entry_s * 1000:+.0f} ms from your first note")
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
    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.live.ports import list_ports

    found = list_ports(args.api)
    print(f"api: {found['api']}")
    for kind in ("inputs", "outputs"):
        print(f"{kind}:" + ("" if found[kind] else " none"))
        for name in found[kind]:
            print(f"  {name}")
    return 0


# ------------------------------------------------------------------------------------ export
