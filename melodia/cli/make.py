"""``melodia generate`` and the music options it shares with ``stream``."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from melodia.cli.common import (_output, _print, fluidsynth_missing, midi_output, not_an_input,
                                 tell)
from melodia.errors import MelodiaError, RenderError
from melodia.util.knobs import argument


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
        "  melodia generate --model band --form AABA --bars 8 --randomness 0.2 -o aaba.mid\n"
        "  melodia render band.mid --stems stems/     (one audio file per instrument)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="MIDI file to write (default melodia-MODEL-DATE-TIME.mid; with --num K, "
                   "NAME-1.mid ... NAME-K.mid); an audio name (x.wav, .flac, .ogg) writes x.mid "
                   "and renders x.wav, as --audio would")
    p.add_argument("--force", action="store_true",
                   help="write -o even where it is an input of this command (the primer)")
    p.add_argument("--model", default="piano",
                   help="piano, band (if shipped), a checkpoint file or a run directory "
                   "(default piano)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=argument("seconds"), default=None,
                        help="seconds of new music, up to 86400 (default 10)")
    length.add_argument("--events", type=argument("events"), default=None,
                        help="number of new events instead")
    p.add_argument("--num", type=argument("num"), default=1,
                   help="pieces to generate at once (default 1)")
    p.add_argument("--seed", type=argument("seed"), default=None,
                   help="random seed (default: a fresh one)")
    _add_music_options(p)
    p.add_argument("--beam", type=argument("beam"), default=1,
                   help="beam size; > 1 runs beam search (it maximises likelihood: on the "
                   "shipped piano model it tends to loop on one note)")
    p.add_argument("--branch-factor", type=argument("branch_factor"), default=2,
                   help="beam search: branches per beam entry (default 2)")
    p.add_argument("--form", default=None, metavar="LETTERS",
                   help="song form, one letter a section of --bars bars (default 8), e.g. AABA: "
                   "a returning letter replays its first section with round(R x bars) bars "
                   "played anew, R the --randomness (0: a literal repeat; default 0.2), the "
                   "last bar first; a new letter is new music that follows what it hears")
    g = p.add_argument_group("groove (--model band)")
    g.add_argument("--repeat", type=_unit, default=0.0, metavar="R|corpus", help="0..1, the "
                   "share of bars that return to an earlier bar of their part (1, 2, 4 or 8 bars "
                   "back, as a plan learned from the style's music draws them); corpus: as the "
                   "style's music does; default 0: as free as the model alone")
    g.add_argument("--drum-grid", action="store_true", help="new drum hits only on the 16ths "
                   "and eighth-note triplets of the tempo (default: anywhere)")
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
    p.add_argument("--memory", type=argument("memory"), default=0.0, metavar="M",
                   help="0..1, how much the piece's own past pulls (a short-term model of the "
                   "piece, mixed in where it is sure); default 0: the model alone")
    s = p.add_argument_group("sampling")
    s.add_argument("--sampler", choices=("probability", "embedding"), default="probability",
                   help="pick events from the softmax, or by perturbing the predicted embedding "
                   "and taking the nearest token (default probability)")
    s.add_argument("--temperature", default="1.0", metavar="T|INSTRUMENT=T,...",
                   help="softmax temperature, 0 = greedy (default 1.0); band models also take "
                   "one per instrument, e.g. drums=0.8,guitar=1.1 (others: 1.0)")
    s.add_argument("--top-k", type=argument("top_k"), default=0,
                   help="keep the K likeliest events, 0 = all")
    s.add_argument("--top-p", type=argument("top_p"), default=1.0,
                   help="nucleus: keep the likeliest events holding this probability (default 1)")
    s.add_argument("--noise", type=argument("noise"), default=None,
                   help="embedding sampler: one noise scale for every event, 0 = greedy; about 1 "
                   "or less loops like greedy decoding (default: the model's calibrated scale "
                   "per event type, or 2.5 for a model without them)")
    s.add_argument("--noise-kind", choices=("gaussian", "vmf"), default="gaussian",
                   help="embedding sampler: Gaussian or von Mises-Fisher noise (default gaussian)")
    c = p.add_argument_group("context and controls")
    c.add_argument("--primer", default=None, metavar="FILE|PITCHES",
                   help="a MIDI file to continue (its last --primer-seconds), or MIDI pitches "
                   "struck together, e.g. 60,64,67")
    c.add_argument("--primer-seconds", type=argument("primer_seconds"), default=5.0,
                   help="how much of a primer file to keep (default 5)")
    c.add_argument("--density", type=argument("density"), default=None,
                   help="notes per second, e.g. 4 (calm) to 16 (busy); models trained with "
                   "controls. Unset: a density drawn (by seed) from the model's training music")
    c.add_argument("--key", default=None,
                   help="key, e.g. C, F#, 'Bb minor', 'E- major' (music21's spelling), Am, eb (a "
                   "lower-case letter alone is minor); models trained with controls. Unset: "
                   "the pitch classes of a passage of the training music, drawn by seed")
    c.add_argument("--no-corpus-controls", dest="corpus_controls", action="store_false",
                   help="leave unset controls absent instead of drawing them from the corpus")
    b = p.add_argument_group("band (--model band): unset ones are drawn, by seed, from the "
                             "training files (of the style, when given)")
    b.add_argument("--style", default=None,
                   help="a style the model learned from its corpus's folders, as you would "
                   "write it: metal, heavy-metal, 'Bossa Nova', jazz (--list-styles: every name)")
    b.add_argument("--tempo", type=argument("tempo"), default=None, metavar="BPM",
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
    b.add_argument("--bars", type=argument("bars"), default=None,
                   help="length in 4/4 bars at the tempo (instead of --seconds)")
    b.add_argument("--keep-playing", action=argparse.BooleanOptionalAction, default=True,
                   help="call back a part the style plays in most bars after half a bar of "
                   "silence (default; --no-keep-playing: parts may drop out, the model alone)")
    b.add_argument("--list-styles", action="store_true",
                   help="print the model's styles with their usual line-ups and tempos, and exit")


def _generate_config(args: argparse.Namespace, **length):
    """A GenerateConfig from the options of :func:`_add_music_options` (plus ``length``)."""
    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.generation.config import GenerateConfig, SamplerConfig

    temperature, per_inst = _number_or_table(args.temperature, "--temperature")
    randomness, random_by = _number_or_table(args.randomness, "--randomness")
    beam = {"beam_size": length.pop("beam", 1), "branch_factor": length.pop("branch_factor", 2)}
    try:
        return GenerateConfig(
            **length, seed=args.seed, primer_seconds=args.primer_seconds,
            density=args.density, key=args.key, precision=args.precision,
            corpus_controls=args.corpus_controls, style=args.style, tempo=args.tempo,
            lineup=args.lineup, randomness=random_by if random_by is not None else randomness,
            instrument_temperature=per_inst, memory=args.memory, keep_playing=args.keep_playing,
            sampler=SamplerConfig(sampler=args.sampler, temperature=temperature,
                                  top_k=args.top_k, top_p=args.top_p, noise=args.noise,
                                  noise_kind=args.noise_kind, **beam))
    except ValueError as err:
        raise MelodiaError(str(err)) from None


def _unit(text: str) -> float | None:
    """A number in 0..1, or ``corpus`` (None: as the style's music does) (``--repeat``)."""
    if text.strip().lower() == "corpus":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number in 0..1 or corpus, not {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"a number in 0..1, not {text}")
    return value


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

    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.features.plan import model_aliases
    from melodia.midi.instruments import instrument_name
    from melodia.model.registry import load_model

    checkpoint = load_model(model)
    info = checkpoint.extra.get("band")
    if not info:
        raise MelodiaError(f"{model} is not a band model: it has no styles")
    if not info.get("styles"):
        print("this band model was trained without style labels")
    aliases = model_aliases(info)
    for style in info.get("styles") or []:
        rows = [r for r in info.get("lineups") or [] if r.get("style") == style]
        tempos = sorted(r["qpm"] for r in rows if r.get("qpm"))
        common = Counter(i for r in rows for i in r["instruments"]).most_common(5)
        tempo = f"{tempos[0]:.0f}-{tempos[-1]:.0f} BPM" if tempos else "tempo unknown"
        names = ", ".join(instrument_name(i) for i, _ in common)
        print(f"{style:14s} {len(rows):3d} files, {tempo}; mostly {names}")
        others = [a for a, s in aliases.items() if s == style]
        if others:
            print(f"{'':14s} also: {', '.join(others)}")
    if info.get("styles"):
        print("(case, spaces, hyphens and underscores in a style name do not matter)")
    return 0


def _numbered(path: Path | None, index: int, count: int) -> Path | None:
    if path is None or count == 1:
        return path
    return path.with_name(f"{path.stem}-{index + 1}{path.suffix}")


def _run_generate(args: argparse.Namespace) -> int:
    import re
    import time

    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.generation.decoding import keep_partial
    from melodia.generation.generator import generate_ids
    from melodia.midi import write_midi

    if args.list_styles:
        return _list_styles(args.model)
    primer = args.primer
    if primer is not None and re.fullmatch(r"\s*\d+(\s*,\s*\d+)*\s*", primer):
        primer = [int(x) for x in primer.split(",")]
    elif primer is not None:
        primer = Path(primer)
    if args.bars is not None and args.seconds is not None:
        raise MelodiaError("give --seconds or --bars, not both")
    if args.form is not None:
        return _run_form(args, primer)
    config = _generate_config(args, seconds=args.seconds if args.seconds is not None else 10.0,
                              events=args.events, num=args.num, bars=args.bars,
                              beam=args.beam, branch_factor=args.branch_factor,
                              repeat=args.repeat, drum_grid=args.drum_grid)
    output = _midi_path(args)
    outputs = [_numbered(path, i, args.num) for path in (output, args.audio, args.plot)
               for i in range(args.num) if path is not None]
    not_an_input(outputs, {"the primer": primer if isinstance(primer, Path) else None},
                 args.force)
    for path in outputs:  # before minutes of generation, not after
        _output(path)
    start = time.perf_counter()
    with keep_partial() as stops:  # Ctrl-C (or the studio's cancel) keeps what was made
        result = generate_ids(args.model, config, primer)
    elapsed = time.perf_counter() - start
    new_events = sum(len(p) - result.primer_events for p in result.pieces)
    if result.band is not None:
        b = result.band
        tell(band=_drawn(b))
        _print(f"band: {b['style'] or 'no style'} at {b['qpm']:.0f} BPM: "
               f"{', '.join(b['names']) or 'any instruments'}")
    if primer is not None:
        # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
        from melodia.encoding.events import event_times

        head = result.pieces[0][: result.primer_events]
        end_s = float(event_times(head, result.encoding)[0][-1]) if len(head) else 0.0
        _print(f"the primer plays for the first {end_s / result.encoding.config.steps_per_second:.2f} s"
               "; the new music follows")
    paths = []  # every MIDI file first: a missing extra (matplotlib, FluidSynth) loses none
    for i, score in enumerate(result.scores()):
        paths.append(write_midi(score, _numbered(output, i, args.num)))
        _print(f"wrote {score.end_s:.1f} s ({score.note_count} notes) to {paths[-1]}")
    interrupted = any(isinstance(stop, KeyboardInterrupt) for stop in stops)
    if stops:
        _print(f"stopped early ({'interrupted' if interrupted else stops[0]}): the file holds "
               "what was made so far" + ("; no plot or audio" if interrupted else ""))
    for i, path in enumerate([] if interrupted else paths):
        if args.plot is not None:
            # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
            from melodia.output.plot import plot_piano_roll

            plot_piano_roll(path, _numbered(args.plot, i, args.num))
            _print(f"  piano roll: {_numbered(args.plot, i, args.num)}")
        if args.audio is not None:
            _render_audio(path, _numbered(args.audio, i, args.num))
            _print(f"  audio: {_numbered(args.audio, i, args.num)}")
    _print(f"seed {result.seed}; {new_events} events in {elapsed:.2f} s "
           f"({new_events / max(elapsed, 1e-9):,.0f} events/s)")
    if args.audio is None:
        _print(f"listen: melodia render {_numbered(output, 0, args.num)}")
    return 130 if interrupted else 0


def _midi_path(args: argparse.Namespace) -> Path:
    """The MIDI file ``-o`` names (default melodia-MODEL-DATE-TIME.mid); ``-o x.wav`` writes
    x.mid and renders x.wav, as ``--audio x.wav`` would (``args.audio`` set)."""
    import time

    name = Path(str(args.model)).stem if args.model not in ("piano", "band") else args.model
    output = args.output or Path(f"melodia-{name}-{time.strftime('%Y%m%d-%H%M%S')}.mid")
    if output.suffix.lower() in (".wav", ".flac", ".ogg"):
        args.audio, output = args.audio or output, output.with_suffix(".mid")
    return midi_output(output)


def _run_form(args: argparse.Namespace, primer) -> int:
    """``generate --form``: one song in sections (:mod:`melodia.generation.form`)."""
    import time

    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.generation.form import form_ids

    refused = [flag for flag, on in (("--seconds", args.seconds is not None),
                                     ("--events", args.events is not None),
                                     ("--num", args.num != 1), ("--beam", args.beam != 1),
                                     ("--primer", primer is not None)) if on]
    if refused:
        raise MelodiaError(f"--form plays one song of --bars bars a section; drop "
                           f"{', '.join(refused)}")
    config = _generate_config(args, seconds=10.0)
    output = _midi_path(args)
    for path in (output, args.audio, args.plot):
        if path is not None:
            _output(path)
    start = time.perf_counter()
    song = form_ids(args.model, config, args.form, args.bars or 8)
    elapsed = time.perf_counter() - start
    if song.band is not None:
        b = song.band
        tell(band=_drawn(b))
        _print(f"band: {b['style'] or 'no style'} at {b['qpm']:.0f} BPM: {', '.join(b['names'])}")
    sections = []
    for index, ((letter, bar, t0, t1), varied) in enumerate(zip(song.sections, song.varied)):
        anew = f"bar{'s' if len(varied) > 1 else ''} {', '.join(map(str, varied))} played anew"
        how = ("new" if song.form.index(letter) == index else
               f"{letter} again, {anew}" if varied else f"{letter} again, as it was")
        bars = f"{bar}-{bar + song.bars - 1}"
        _print(f"  {letter}  bars {bars:9s} {t0:7.1f}-{t1:7.1f} s  {how}")
        sections.append({"letter": letter, "first_bar": int(bar), "bars": int(song.bars),
                         "start_s": round(float(t0), 3), "end_s": round(float(t1), 3),
                         "new": song.form.index(letter) == index,
                         "anew": [int(v) for v in varied]})
    tell(sections=sections)
    path = song.write(output)
    _print(f"wrote {song.score.end_s:.1f} s ({song.score.note_count} notes) to {path}")
    if args.plot is not None:
        # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
        from melodia.output.plot import plot_piano_roll

        plot_piano_roll(path, args.plot)
        _print(f"  piano roll: {args.plot}")
    _also_audio(path, args.audio)
    _print(f"seed {song.seed}; variation {song.variation:g}; {elapsed:.1f} s")
    return 0


def _drawn(band: dict) -> dict:
    """What a band plan settled (drawn or asked): style, tempo, line-up, for :func:`tell`."""
    return {"style": band["style"], "qpm": round(float(band["qpm"]), 2),
            "lineup": list(band["names"])}


def _also_audio(midi: Path, audio: Path | None) -> None:
    """``--audio``: render the MIDI file just written, and say where."""
    if audio is not None:
        _render_audio(midi, audio)
        _print(f"  audio: {audio}")


def _render_audio(midi: Path, audio: Path) -> None:
    """Render ``midi`` (already written) to ``audio``; a missing FluidSynth is one line that
    says what to install and how to render the file afterwards."""
    # deferred: keeps `melodia --help` fast (no torch, numpy or C libraries at parse time)
    from melodia.output.audio import render

    try:
        render(midi, audio)
    except RenderError as err:
        missing = fluidsynth_missing(err)
        if missing is None:
            raise
        raise MelodiaError(f"no audio: {missing}; {midi} is written: once installed, "
                           f"melodia render {midi} -o {audio}") from None


# ------------------------------------------------------------------------------------ stream
