"""``melodia accompany`` and ``melodia infill``: play with the music a musician brings; and
``melodia evaluate --accompaniment``, how well parts play with the rest of a file."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from melodia.cli.common import _output, _print, midi_output, not_an_input, tell
from melodia.cli.make import _also_audio, _drawn, _generate_config, _unit
from melodia.errors import GenerateError, MelodiaError
from melodia.util.knobs import argument

# what `_generate_config` reads that these commands do not ask for
_UNASKED = dict(primer_seconds=5.0, density=None, key=None, precision="fp32",
                corpus_controls=True, top_k=0, top_p=1.0, noise=None, noise_kind="gaussian",
                keep_playing=True)


def _add_band_knobs(p: argparse.ArgumentParser, model: str, tempo: bool = True) -> None:
    b = p.add_argument_group("the band")
    b.add_argument("--model", default=model,
                   help=f"band (the shipped band model), a checkpoint or a run directory of a "
                   f"band model (default {model})")
    b.add_argument("--style", default=None,
                   help="a style the model knows: metal, rock, funk, swing, bossa, latin, "
                   "country, or a name for one ('heavy metal', jazz, salsa...)")
    if tempo:
        b.add_argument("--tempo", type=argument("tempo"), default=None, metavar="BPM",
                       help="the beat the band plays to (default: the file's own tempo map)")
    b.add_argument("--randomness", default=None, metavar="R|INSTRUMENT=R,...",
                   help="0..1, how adventurous; or per instrument, e.g. drums=0.2,bass=0.5")
    b.add_argument("--temperature", default="1.0", metavar="T|INSTRUMENT=T,...",
                   help="softmax temperature (default 1.0), or one per instrument")
    b.add_argument("--sampler", choices=("probability", "embedding"), default="probability",
                   help="pick events from the softmax or by embedding noise (default probability)")
    b.add_argument("--seed", type=argument("seed"), default=None,
                   help="random seed (default: a fresh one, printed)")
    b.add_argument("--free-drums", action="store_true",
                   help="let new drums fall off the song's grid of 16ths and triplets")
    b.add_argument("--memory", type=argument("memory"), default=0.0, metavar="M",
                   help="0..1, how much the piece's own past pulls on the new parts (a "
                   "short-term model of the piece, given parts included); default 0")
    o = p.add_argument_group("output")
    o.add_argument("-o", "--output", type=Path, default=None,
                   help="MIDI file to write (default SONG-accompanied.mid / SONG-infill.mid "
                   "in the current folder)")
    o.add_argument("--force", action="store_true", help="write -o even over the input file")
    o.add_argument("--audio", type=Path, default=None, metavar="OUT.wav",
                   help="also render audio with FluidSynth (needs melodia[audio])")
    p.set_defaults(**_UNASKED)


def _add_accompany(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "accompany",
        help="add band parts (drums, bass, ...) that play along with a MIDI file",
        description="Generate the parts of --lineup to play with SONG for its whole length, at "
        "its tempo map (or --tempo), hearing its harmony as it goes. Every track of SONG is "
        "kept byte for byte (notes, times, velocities, programs); the new parts are added as "
        "tracks of their own on free channels (drums on channel 10). SONG can be a piano "
        "piece, a melody, or a band file missing some parts. Needs a band model.",
        epilog="examples:\n"
        "  melodia accompany song.mid --lineup drums,bass -o song-band.mid\n"
        "  melodia accompany melody.mid --lineup drums,bass,guitar --style funk --randomness 0.3\n"
        "  melodia accompany piano.mid --lineup drums,bass --tempo 96 --audio out.wav",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("song", type=Path, help="the MIDI file to accompany")
    p.add_argument("--harmony", type=argument("lean"), default=None, metavar="X",
                   help="how strongly bass and chords lean on the song's harmony in each beat: "
                   "a logit bonus for its pitch classes (default 0.5, and twice that for a "
                   "bass on the pitch classes that sound; 0: the model alone)")
    p.add_argument("--lineup", default="drums,bass", metavar="INSTRUMENTS",
                   help="the parts to add: drums, GM families (bass, guitar, keys, organ, "
                   "strings, brass...), GM names or programs (default drums,bass); the song's "
                   "own instruments are taken, so 'keys' beside a piano gets another keyboard")
    _add_band_knobs(p, "band")
    _add_repeat(p, 0.0)


def _add_repeat(p: argparse.ArgumentParser, default: float | None) -> None:
    shown = "corpus" if default is None else f"{default:g}"
    p.add_argument("--repeat", type=_unit, default=default, metavar="R|corpus",
                   help="0..1, the share of each new part's bars that return to a bar it "
                   "played 1, 2, 4 or 8 bars before, as a plan learned from the style's music "
                   f"draws them; corpus: as often as that music does; 0: free (default {shown})")


def _band_job(args: argparse.Namespace, suffix: str) -> tuple[Path, object, dict]:
    """The output file (checked: not the song, its folder made), the generation's config and the
    harmony option of a band playing with ``args.song`` (accompany, restyle)."""
    output = midi_output(args.output or Path(f"{args.song.stem}-{suffix}.mid"))
    not_an_input([output, args.audio], {"the song": args.song}, args.force)
    _output(output)
    config = dataclasses.replace(_generate_config(args, seconds=10.0), repeat=args.repeat)
    return output, config, {} if args.harmony is None else {"harmony": args.harmony}


def _run_accompany(args: argparse.Namespace) -> int:
    import time

    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.generation.accompaniment import accompany_ids

    output, config, harmony = _band_job(args, "accompanied")
    start = time.perf_counter()
    result = accompany_ids(args.model, args.song, config, drum_grid=not args.free_drums,
                           **harmony)
    elapsed = time.perf_counter() - start
    band = result.band
    tell(band=_drawn(band))
    _print(f"band: {band['style'] or 'no style'} at {band['qpm']:.0f} BPM: "
           f"{', '.join(band['names'])} with {args.song.name}")
    path = result.write(output)
    notes = sum(len(t.notes) for t in result.parts[0])
    _print(f"wrote {path}: {args.song.name} as it was, plus {notes} new notes over "
           f"{result.end_s:.1f} s")
    _also_audio(path, args.audio)
    _print(f"seed {result.seed}; {elapsed:.1f} s")
    return 0


def _add_infill(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "infill",
        help="regenerate some bars of a MIDI file, for all tracks or named ones",
        description="Regenerate bars --bars of SONG (counted from 1, by its own time "
        "signatures and tempo map) for the tracks of --tracks (default: all), so that they "
        "join the music before and after them. The model hears everything before the span, "
        "plays the kept tracks' notes inside it as given, and --candidates fills are drawn "
        "together: the one whose first and last bars sit closest to the song's bars around "
        "them is written. Everything outside the span stays as it was.",
        epilog="examples:\n"
        "  melodia infill song.mid --bars 5-8 -o song-new-bridge.mid\n"
        "  melodia infill song.mid --bars 9-12 --tracks bass,drums --randomness 0.3\n"
        "  melodia infill nocturne.mid --bars 3-4 --model piano --candidates 8",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("song", type=Path, help="the MIDI file to fill in")
    p.add_argument("--bars", required=True, metavar="FIRST-LAST",
                   help="the bars to regenerate, e.g. 5-8 or 5 (counted from 1)")
    p.add_argument("--tracks", default=None, metavar="PARTS",
                   help="the tracks to regenerate: drums, GM families (bass, guitar, keys...), "
                   "GM names, programs or the tracks' own names (default: every track)")
    p.add_argument("--candidates", type=argument("candidates"), default=4, metavar="N",
                   help="fills drawn at once; the best-joining one is kept (default 4)")
    p.add_argument("--lean", type=argument("lean"), default=None, metavar="X",
                   help="how strongly the fill leans on the bars before and after the span: a "
                   "logit bonus for repeating what they play (default 10; 0: the model alone)")
    _add_band_knobs(p, "band")
    p.set_defaults(lineup=None)


def _run_infill(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from melodia.generation.infill import describe, infill_ids

    output = midi_output(args.output or Path(f"{args.song.stem}-infill.mid"))
    not_an_input([output, args.audio], {"the song": args.song}, args.force)
    _output(output)
    config = _generate_config(args, seconds=10.0)
    start = time.perf_counter()
    lean = {} if args.lean is None else {"lean": args.lean}
    result = infill_ids(args.model, args.song, args.bars, args.tracks, config, args.candidates,
                        drum_grid=not args.free_drums, **lean)
    elapsed = time.perf_counter() - start
    t0, t1 = result.span
    names = ", ".join(describe(result.score.tracks[i]) for i in result.tracks)
    seams = " / ".join("-" if np.isnan(s) else f"{s:.2f}" for s in result.seams[result.chosen])
    _print(f"filled bars {args.bars} ({t0:.1f}-{t1:.1f} s) of {names}: best of "
           f"{len(result.seams)}")
    tell(infill={"bars": args.bars, "start_s": round(float(t0), 3), "end_s": round(float(t1), 3),
                 "tracks": names, "candidates": len(result.seams),
                 "chosen": int(result.chosen) + 1, "seams": seams})
    if len(result.real):
        low, high = np.percentile(result.real, [10, 90])
        _print(f"  seams in / out {seams} (bar distance; these tracks move {low:.2f}-{high:.2f} "
               f"from bar to bar in {args.song.name})")
    path = result.write(output)
    _print(f"wrote {path}")
    _also_audio(path, args.audio)
    _print(f"seed {result.seed}; {elapsed:.1f} s")
    return 0


def _add_evaluate_given(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("accompaniment (--accompaniment FILE_OR_DIR ...)")
    g.add_argument("--accompaniment", type=Path, nargs="+", default=None, metavar="FILE_OR_DIR",
                   help="score the --parts of each MIDI file against its other tracks: "
                   "harmonic agreement (their bass and chord notes' pitch classes sound in the "
                   "other tracks within the beat, or in the triad those imply) and rhythmic "
                   "alignment (their drum onsets within 30 ms of the 16th grid of the file's "
                   "tempo map), beside the same parts with the link broken (moved 1..11 "
                   "semitones and half a beat): an accompanied file, or a real band file for "
                   "the level to reach")
    g.add_argument("--parts", default="drums,bass", metavar="PARTS",
                   help="the tracks scored: drums, GM families, names, programs or track names "
                   "(default drums,bass); every other track is what they play with")


def _run_evaluate_given(args: argparse.Namespace) -> int:
    import json
    import math

    import numpy as np

    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.evaluate.accompaniment import link_scores
    from melodia.evaluate.music import midi_files
    from melodia.generation.accompaniment import read_given

    files = midi_files(args.accompaniment)
    if not files:
        raise MelodiaError("no MIDI files in " + ", ".join(map(str, args.accompaniment)))
    rows, keys = [], ("harmonic", "broken_harmonic", "bass", "broken_bass", "rhythmic")
    for path in files:
        try:
            _, score = read_given(path)
        except (MelodiaError, OSError) as err:
            _print(f"skipped {path}: {str(err).splitlines()[0]}")
            continue
        new = sorted({i for part in args.parts.split(",") for i in _tracks(score, part)})
        if not new:
            _print(f"skipped {path}: no {args.parts} track")
            continue
        if len(new) == sum(1 for t in score.tracks if len(t.notes)):
            _print(f"skipped {path}: it has nothing but {args.parts} to play with")
            continue
        rows.append({"file": str(path), **link_scores(score, new, args.seed)})
    if not rows:
        raise GenerateError("no file had both the parts and something to play with")
    mean = {k: float(np.nanmean([r[k] for r in rows])) if any(not math.isnan(r[k])
            for r in rows) else math.nan for k in keys}
    if args.json:
        print(json.dumps({"files": rows, "mean": mean}, indent=1))
        return 0
    print(f"{'file':40s} {'harmonic':>9s} {'broken':>7s} {'bass':>6s} {'broken':>7s} "
          f"{'rhythmic':>9s}")
    for row in [*rows, {"file": f"mean of {len(rows)}", **mean}]:
        print(f"{Path(row['file']).name[:40]:40s} {row['harmonic']:9.3f} "
              f"{row['broken_harmonic']:7.3f} {row['bass']:6.3f} {row['broken_bass']:7.3f} "
              f"{row['rhythmic']:9.3f}")
    _print("harmonic: the parts' bass and chord notes in the others' harmony; bass: their bass "
           "notes' pitch classes sounding in the others' beat; broken: the same notes moved "
           "1..11 semitones and half a beat; rhythmic: drum onsets on the 16ths")
    return 0


def _tracks(score, part: str) -> list[int]:
    """The tracks of ``score`` that ``part`` names (none where it has no such track)."""
    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.generation.infill import select_tracks

    try:
        return select_tracks(score, part)
    except GenerateError as err:
        if "has no" in str(err):
            return []
        raise
