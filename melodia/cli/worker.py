"""``melodia stream``'s model in a process of its own: the player never waits on it.

The command line's player (the MIDI port, the clock, the sends) stays in a process that imports
no torch; the model runs in a child process (``python -m melodia.cli.worker``) that writes the
stream's timed messages to a pipe, a few seconds ahead (the pipe is kept small, so the child
blocks there instead of running minutes ahead). So:

- importing torch (whose C library loads in one call of ~0.4 s that holds the interpreter) and
  each model step never hold back a note: the player's threads share no interpreter lock with
  them;
- the first seconds of a stream can play at once from :mod:`melodia.live.headstart` while the
  child starts; the child makes them again, checks them and goes on after them;
- when the player is done it closes the pipe; the child then keeps the next stream's first
  seconds and exits.

The protocol, one line each: the player writes one JSON request to the child's stdin
(``{"options": {...}, "key": str | null, "head": {"seed", "messages"} | null}``); the child writes
``TIME HEX`` per message (seconds, the message's bytes in hex), or ``!error TEXT`` once (a
MelodiaError: the options or the model) and exits 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import subprocess
import sys
from typing import IO, Any, Iterator

import mido

from melodia.cli.make import _generate_config
from melodia.errors import MelodiaError
from melodia.live.decode import Timed
from melodia.live.headstart import (HEAD_S, HeadStart, has_headstart, plain_options,
                                   write_headstart)

log = logging.getLogger(__name__)

PIPE_BYTES = 4096  # the smallest pipe Linux makes: ~200 messages ahead of the player
# how long the player waits for the child to end: a child that keeps a spare head (~1 s) goes
# on alone, in its own session, and exits when that is written
WAIT_S = 0.5


class WorkerError(MelodiaError):
    """The model's process said an error, or ended without one."""


class Worker:
    """The child process making a stream's messages (the player's side)."""

    def __init__(self, options: dict[str, Any], key: str | None, head: HeadStart | None,
                 verbose: bool = False) -> None:
        kept = None if head is None else {
            "seed": head.seed, "messages": [[t, bytes(m.bytes()).hex()] for t, m in head.messages]}
        request = {"options": options, "key": key, "head": kept, "verbose": verbose}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "melodia.cli.worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, start_new_session=True)  # Ctrl-C reaches the player only
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        self.process.stdin.close()

    def messages(self) -> Iterator[tuple[float, mido.Message]]:
        """The child's messages as they come; its error is raised here."""
        for line in self.process.stdout:  # a blocking read: the player's GIL is free
            if line.startswith(b"!error "):
                raise WorkerError(line[7:].decode(errors="replace").strip())
            t, data = line.split()
            yield float(t), mido.Message.from_bytes(bytes.fromhex(data.decode()))
        code = self.process.wait()
        if code:
            raise WorkerError(f"the model's process ended with exit code {code}")

    def close(self) -> None:
        """Close the pipe: the child keeps the next head, if it has one to keep, and exits."""
        self.process.stdout.close()
        try:
            self.process.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            log.debug("the model's process ends on its own (keeping the next stream's start)")


# ------------------------------------------------------------------- the stream's settings


def _stream_seconds(args: argparse.Namespace) -> float | None:
    """--seconds, or --bars of 4/4 at the tempo."""
    from melodia.midi import seconds_for_bars

    if args.bars is not None:
        if args.seconds is not None:
            raise MelodiaError("give --seconds or --bars, not both")
        return seconds_for_bars(args.bars, args.tempo or 120.0)
    return args.seconds



def _player_instrument(spec: str) -> int:
    """``--player``: one GM instrument (drums: 128)."""
    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.midi.instruments import LineupError, part_instruments

    try:
        instruments = part_instruments(spec)
    except LineupError as err:
        raise MelodiaError(f"--player: {err}") from None
    return min(instruments)


def _stream_config(args: argparse.Namespace):
    """The StreamConfig of ``melodia stream``'s options (torch imported by now)."""
    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.live.stream import StreamConfig

    generate = _generate_config(args, seconds=1.0)
    seconds = _stream_seconds(args)
    if args.primer is not None:
        raise MelodiaError("stream takes no --primer; use --listen to answer a player")
    try:
        config = StreamConfig(model=args.model, virtual=args.virtual or "melodia",
                              port=args.port, api=args.api, seconds=seconds,
                              channel=args.channel - 1, clock_out=args.clock_out,
                              lookahead_s=args.lookahead or (0.25 if args.accompany else 0.5),
                              listen=args.listen, accompany=args.accompany,
                              player_instrument=_player_instrument(args.player),
                              count_in=args.count_in, rest_bars=args.rest_bars,
                              follow_clock=args.follow_clock,
                              respond_seconds=args.respond_seconds, rounds=args.rounds,
                              trigger_cc=args.trigger_cc, generate=generate)
    except ValueError as err:
        raise MelodiaError(str(err)) from None
    if args.accompany and args.model == "piano":
        raise MelodiaError("--accompany plays a band: add --model band (and --lineup)")
    return config


# ------------------------------------------------------------------------ the child's side


def _serve(request: dict[str, Any], out: IO[bytes]) -> None:
    from melodia.live.stream import after_headstart, headstart, timed_messages

    args = argparse.Namespace(**request["options"])
    key, kept = request["key"], request["head"]
    config = _stream_config(args)
    if kept is None:
        messages = timed_messages(config)
    else:  # the player is playing these: make them again, check them, go on after them
        head = HeadStart(int(kept["seed"]), [(float(t), mido.Message.from_bytes(bytes.fromhex(b)))
                                             for t, b in kept["messages"]])
        messages = after_headstart(config, head, key)
    seed = args.seed
    record = kept is None and seed is not None and not has_headstart(key, seed)
    recorded = Recorded(key, seed, messages) if record else None
    try:
        for t, message in recorded or messages:
            out.write(f"{t:.6f} {bytes(message.bytes()).hex()}\n".encode())
            out.flush()
    except (BrokenPipeError, ValueError):  # the player is done
        pass
    if recorded is not None:
        recorded.finish()
    elif seed is None:  # the next stream without --seed starts from a new seed's head
        spare = secrets.randbelow(2**31)
        write_headstart(key, headstart(config, spare), spare=True)


class Recorded:
    """``messages`` passed through, their first :data:`HEAD_S` seconds kept for the next
    stream of this seed as soon as they are made (or at :meth:`finish`, for a short stream)."""

    def __init__(self, key: str, seed: int, messages: Iterator[Timed]) -> None:
        self.key, self.seed, self.messages = key, seed, messages
        self.head: list[Timed] | None = []

    def __iter__(self) -> Iterator[Timed]:
        for t, message in self.messages:
            self._see(t, message)
            yield t, message

    def _see(self, t: float, message: mido.Message) -> None:
        if self.head is None:
            return
        if t < HEAD_S:
            self.head.append((t, message))
        else:
            write_headstart(self.key, HeadStart(self.seed, self.head), spare=False)
            self.head = None

    def finish(self) -> None:
        """Make the rest of the head, if the stream ended before it, and keep it."""
        for t, message in self.messages:
            if self.head is None:
                break
            self._see(t, message)


def main() -> int:
    request = json.loads(sys.stdin.readline())
    logging.basicConfig(level=logging.DEBUG if request.get("verbose") else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("melodia").setLevel(logging.DEBUG if request.get("verbose")
                                          else logging.WARNING)
    out = sys.stdout.buffer
    try:
        import fcntl

        fcntl.fcntl(out.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except (ImportError, OSError):  # not Linux, or not a pipe: the player reads ahead anyway
        pass
    try:
        _serve(request, out)
    except MelodiaError as err:
        try:
            out.write(f"!error {' '.join(str(err).split())}\n".encode())
            out.flush()
        except BrokenPipeError:
            pass
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def start_worker(args: argparse.Namespace, key: str | None, head: HeadStart | None) -> Worker:
    """A child making the stream of ``melodia stream``'s ``args`` (after ``head``, if given)."""
    return Worker(plain_options(vars(args)), key, head,
                  verbose=bool(getattr(args, "verbose", False)))


if __name__ == "__main__":
    sys.exit(main())
