"""``melodia render`` and ``plot``."""

from __future__ import annotations

import argparse
from pathlib import Path

from melodia.cli.common import _output, _print, fluidsynth_missing
from melodia.errors import MelodiaError, RenderError
from melodia.util.knobs import argument


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
    p.add_argument("--sample-rate", type=argument("sample_rate"), default=44100,
                   metavar="HZ",
                   help="output sample rate, 8000-96000 (default 44100)")
    p.add_argument("--gain", type=argument("gain"), default=0.2,
                   help="FluidSynth master gain (default 0.2); only matters with --no-normalize")
    p.add_argument("--no-normalize", action="store_true",
                   help="keep FluidSynth's level instead of scaling the peak to -1 dBFS "
                   "(loud passages may clip)")
    p.add_argument("--max-tail", type=argument("max_tail"), default=5.0, metavar="SECONDS",
                   help="longest tail kept after the last note while the sound dies away "
                   "(default 5)")
    p.add_argument("--stems", type=Path, default=None, metavar="DIR",
                   help="also write one file per instrument into DIR (01-drums.wav, ...), each "
                   "as long as the mix and at its level, to line up in a DAW; format as -o")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_render(args: argparse.Namespace) -> int:
    out = args.output or args.midi.with_suffix(".wav")
    _not_input(out, args.midi)
    _output(out)
    try:
        return _render_file(args, out)
    except RenderError as err:
        missing = fluidsynth_missing(err)
        if missing is None:
            raise
        raise MelodiaError(f"cannot render audio: {missing}") from None


def _render_file(args: argparse.Namespace, out: Path) -> int:
    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.output.audio import render, render_stems

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
    p.add_argument("--width", type=argument("width"), default=1600, metavar="PX",
                   help="image width in pixels (default 1600; ~2400+ for pieces over 5 minutes)")
    p.add_argument("--height", type=argument("height"), default=900, metavar="PX",
                   help="image height in pixels (default 900)")
    p.add_argument("--title", default=None, help="title above the roll (default: the file name)")


def _run_plot(args: argparse.Namespace) -> int:
    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.output.plot import plot_piano_roll

    out = args.output or args.midi.with_suffix(".png")
    _not_input(out, args.midi)
    _output(out)
    plot_piano_roll(args.midi, out, width_px=args.width, height_px=args.height, title=args.title)
    _print(f"wrote piano roll to {out}")
    return 0


# ---------------------------------------------------------------------------- train/evaluate
