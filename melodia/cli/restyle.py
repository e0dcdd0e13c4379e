"""``melodia restyle``: a song's melody kept, played by a new band in another style."""

from __future__ import annotations

import argparse
from pathlib import Path

from melodia.cli.common import _print, tell
from melodia.cli.given import _add_band_knobs, _add_repeat, _band_job
from melodia.cli.make import _also_audio, _drawn
from melodia.util.knobs import argument


def _add_restyle(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "restyle",
        help="play a song's melody with a new band in another style (swing, metal, bossa...)",
        description="Keep SONG's melody (a track named melody, vocal, lead or solo; else the most "
        "melodic part: one note at a time, through the song, the highest; or the tracks --keep "
        "names) with every pitch in its order, drop the rest, and let a band in --style play "
        "--lineup along the song's tempo map and bars, leaning on the harmony of the whole "
        "original beat by beat (read from all its tracks before they are dropped), so the new "
        "band plays the song's changes. The melody is re-timed to the style's feel (swung "
        "eighths for swing, straight for the others; --feel to choose) and can be played by "
        "another instrument (--lead). Needs a band model.",
        epilog="examples:\n"
        "  melodia restyle song.mid --style swing -o song-swing.mid\n"
        "  melodia restyle song.mid --style metal --lineup drums,bass,guitar,guitar --lead auto\n"
        "  melodia restyle song.mid --style bossa --keep vocals --feel straight --audio out.wav\n"
        "  melodia restyle song.mid --style funk --keep '#2' --randomness 0.3 --seed 7",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("song", type=Path, help="the MIDI file to restyle")
    p.add_argument("--lineup", default=None, metavar="INSTRUMENTS",
                   help="the new band: drums, GM families (bass, guitar, keys, organ, brass...), "
                   "GM names or programs; at least one pitched part (default: a line-up the "
                   "style's training music played, drawn by --seed)")
    p.add_argument("--keep", default=None, metavar="TRACKS",
                   help="the tracks that stay, instead of the melody found: a track's name, a "
                   "GM family, name or program, or #N (the Nth track with notes), comma-separated")
    p.add_argument("--feel", choices=("auto", "swing", "straight"), default="auto",
                   help="the melody's eighths: swung (two thirds into the beat), straight, or "
                   "auto: the style's (swing for swing, straight for the others)")
    p.add_argument("--lead", default=None, metavar="INSTRUMENT",
                   help="play the melody on this instrument (a GM name, family or program), or "
                   "auto: the style's usual lead (sax for swing, guitar for rock and metal...); "
                   "default: its own")
    p.add_argument("--harmony", type=argument("lean"), default=None, metavar="X",
                   help="how strongly the new parts lean on the original's harmony in each "
                   "beat (default 1.5: about as close as the song's own accompaniment; 0: the "
                   "melody and the model alone)")
    _add_band_knobs(p, "band", tempo=False)
    _add_repeat(p, 0.0)
    p.set_defaults(tempo=None)


def _run_restyle(args: argparse.Namespace) -> int:
    import time

    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.generation.restyle import restyle_ids

    output, config, harmony = _band_job(args, "restyled")
    start = time.perf_counter()
    result = restyle_ids(args.model, args.song, config, args.keep, args.feel, args.lead,
                         drum_grid=not args.free_drums, **harmony)
    elapsed = time.perf_counter() - start
    band = result.band
    tell(band=_drawn(band), restyle={"melody": result.names, "feel": result.feel,
                                     "moved": result.moved})
    _print(f"kept {', '.join(result.names)} ({result.feel} feel: {result.moved} notes moved); "
           f"band: {band['style']} at {band['qpm']:.0f} BPM: {', '.join(band['names'])}")
    path = result.write(output)
    notes = sum(len(t.notes) for t in result.result.parts[0])
    _print(f"wrote {path}: the melody plus {notes} new notes over {result.result.end_s:.1f} s")
    _also_audio(path, args.audio)
    _print(f"seed {result.seed}; {elapsed:.1f} s")
    return 0
