"""What to generate and how: :class:`GenerateConfig` and the :class:`SamplerConfig` it holds,
checked when they are made."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from melodia.encoding.events import TYPE_CODES
from melodia.features.keys import key_histogram
from melodia.generation.grammar import GrammarConfig
from melodia.midi import seconds_for_bars
from melodia.model.stepper import PRECISIONS
from melodia.util.knobs import MAX_SECONDS, KnobError, check, check_optional

SAMPLERS = ("probability", "embedding")
NOISES = ("gaussian", "vmf")
METRICS = ("logit", "cosine")


@dataclass
class SamplerConfig:
    """How each event is picked from the model's output."""

    sampler: str = "probability"  # "probability" or "embedding"
    temperature: float = 1.0  # probability sampler; 0 = greedy
    top_k: int = 0  # keep the k likeliest events; 0 = all
    top_p: float = 1.0  # keep the smallest set holding this probability mass; 1 = all
    # embedding sampler: noise scale s; 0 = greedy (~1 loops like greedy); None = the model's
    # calibrated per-type scales where it has them (melodia.generation.calibrate), else DEFAULT_NOISE
    noise: float | None = None
    # embedding sampler: a scale per event type ("NOTE_ON": 2.0, ...), overriding `noise` for
    # those types; each type's tokens are scored from their own perturbed point. Calibrated
    # scales ship in a checkpoint (melodia.generation.calibrate) and are used unless `noise` is given.
    noise_by_type: dict[str, float] | None = None
    # embedding sampler: a score offset per event type (calibrated with the scales, so each type
    # is chosen about as often as the model predicts it)
    offset_by_type: dict[str, float] | None = None
    noise_kind: str = "gaussian"  # "gaussian" or "vmf" (von Mises-Fisher)
    metric: str = "logit"  # embedding sampler: "logit" (scale 0 = greedy) or "cosine"
    beam_size: int = 1  # > 1: Magenta-style beam search over sampled branches
    branch_factor: int = 2  # beam search: branches sampled from each beam entry
    steps_per_iteration: int = 1  # beam search: events sampled per branch before pruning
    # band: per instrument (GM program, 128 = drums), the temperature of its events (probability
    # sampler) or a factor on its noise scales (embedding sampler); others use the above
    temperature_by_instrument: dict[int, float] | None = None
    noise_factor_by_instrument: dict[int, float] | None = None

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, not {self.sampler!r}")
        if self.noise_kind not in NOISES:
            raise ValueError(f"noise_kind must be one of {NOISES}, not {self.noise_kind!r}")
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, not {self.metric!r}")
        self.temperature = check("temperature", self.temperature)
        self.noise = check_optional("noise", self.noise)
        if self.noise_by_type is not None:
            bad = {k: v for k, v in self.noise_by_type.items()
                   if k not in TYPE_CODES or not (0 <= float(v) < math.inf)}
            if bad:
                raise ValueError(f"noise_by_type needs event types {sorted(TYPE_CODES)} with "
                                 f"scales >= 0, got {bad}")
        if self.offset_by_type is not None:
            bad = {k: v for k, v in self.offset_by_type.items()
                   if k not in TYPE_CODES or not math.isfinite(float(v))}
            if bad:
                raise ValueError(f"offset_by_type needs event types {sorted(TYPE_CODES)} with "
                                 f"finite offsets, got {bad}")
        for name in ("temperature_by_instrument", "noise_factor_by_instrument"):
            table = getattr(self, name)
            if table is not None:
                table = {int(k): float(v) for k, v in table.items()}
                if any(not 0 <= k <= 128 or not 0 < v < math.inf for k, v in table.items()):
                    raise ValueError(f"{name} needs instruments 0..128 with values > 0")
                setattr(self, name, table)
        self.top_k, self.top_p = check("top_k", self.top_k), check("top_p", self.top_p)
        self.beam_size = check("beam", self.beam_size, "beam_size")
        self.branch_factor = check("branch_factor", self.branch_factor)
        self.steps_per_iteration = check("steps_per_iteration", self.steps_per_iteration)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SamplerConfig":
        return cls(**data)


@dataclass
class GenerateConfig:
    """What to generate and how; ``sampler`` and ``grammar`` say how each event is picked."""

    seconds: float | None = 10.0  # length of the new music (ignored when `events` is set)
    events: int | None = None  # generate exactly this many events instead
    num: int = 1  # pieces generated together (one batch)
    seed: int | None = None  # None: a fresh random seed (reported in the result)
    primer_seconds: float = 5.0  # a MIDI primer contributes its last this-many seconds
    density: float | None = None  # control: notes per second (models trained with controls)
    key: str | None = None  # control: "C", "F#", "Bb minor", "Am" -> pitch-class histogram
    pitch_histogram: Sequence[float] | None = None  # control: 12 weights C..B (overrides key)
    # controls left unset are drawn (by seed) from the training corpus's own, saved in the model
    # (density of a 20 s stretch and its pitch classes: a key); False leaves them absent
    corpus_controls: bool = True
    # band models (melodia.features.band): what plays and how; unset ones are drawn (by seed) from the
    # training corpus's own files (of the style, when one is given)
    style: str | None = None  # a style the model was trained on (see `--list-styles`)
    tempo: float | None = None  # beats per minute, written into the file
    lineup: str | Sequence[str | int] | None = None  # "drums,bass,guitar,guitar", GM programs
    bars: int | None = None  # length in 4/4 bars at the tempo (instead of seconds)
    # 0..1: how adventurous the sampling is (probability sampler: temperature 0.6 + 0.8 r;
    # embedding sampler: noise x 2 r, so 0.5 is the model's own); a float or per instrument
    # ("drums=0.3,guitar=0.7" / {128: 0.3})
    randomness: float | str | dict | None = None
    # band: 0..1, the share of bars that return to an earlier bar of their part (1, 2, 4 or 8
    # bars back; melodia.generation.groove); 0 (for now the default, until the groove is a net
    # gain on the style classifier: issue 33): as free as the model alone; None: as the
    # style's training music does
    repeat: float | None = 0.0
    drum_grid: bool = False  # band: new drum hits only on the 16ths and triplets of the tempo
    # band: a part its style plays in most bars, silent for half a bar, is called back
    # (melodia.generation.groove's presence; also with repeat 0); False: parts may drop out
    keep_playing: bool = True
    # 0..1: how much the piece's own past pulls (melodia.generation.recall: a short-term model
    # of the piece, mixed in by a gate fitted on training files); 0: the model alone
    memory: float = 0.0
    # band: a temperature per instrument, "drums=0.8,guitar=1.1" (families cover the line-up's)
    instrument_temperature: str | dict | None = None
    # band: keep each instrument in the pitch range its training music plays, and basses (any
    # instrument the corpus plays one note at a time) monophonic; False: only the line-up rule
    instrument_rules: bool = True
    precision: str = "fp32"  # "fp32" or "int8" (dynamic int8 LSTM matrices)
    threads: int | None = 1  # torch threads while generating (one event at a time: 1 is fastest)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    grammar: GrammarConfig = field(default_factory=GrammarConfig)

    def __post_init__(self) -> None:
        if isinstance(self.sampler, dict):
            self.sampler = SamplerConfig.from_dict(self.sampler)
        if isinstance(self.grammar, dict):
            self.grammar = GrammarConfig(**self.grammar)
        if self.events is None and self.seconds is None:
            raise KnobError("give seconds > 0 or a number of events")
        self.events = check_optional("events", self.events)
        if self.events is None:
            self.seconds = check("seconds", self.seconds)
        self.num = check("num", self.num)
        self.seed = check_optional("seed", self.seed)
        self.primer_seconds = check("primer_seconds", self.primer_seconds)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {self.precision!r}")
        self.density = check_optional("density", self.density)
        if self.key is not None:
            key_histogram(self.key)  # validates
        self.tempo = check_optional("tempo", self.tempo)
        self.bars = check_optional("bars", self.bars)
        if self.bars is not None and self.events is None:  # bars at a slow tempo: still a limit
            length = seconds_for_bars(self.bars, self.tempo or 120.0)
            if length > MAX_SECONDS:
                raise KnobError(f"{self.bars} bars at {self.tempo or 120.0:g} BPM last "
                                f"{length:.0f} s; the most is {MAX_SECONDS:.0f} s (a day)")
        if not isinstance(self.randomness, (str, dict, type(None))):  # a number: 0..1
            self.randomness = check("randomness", self.randomness)
        if self.repeat is not None and not (isinstance(self.repeat, (int, float))
                                            and 0 <= self.repeat <= 1):
            raise KnobError(f"repeat must be in 0..1, not {self.repeat!r}")
        self.threads = check_optional("threads", self.threads)
        self.memory = check("memory", self.memory)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


__all__ = ["GenerateConfig", "METRICS", "NOISES", "SAMPLERS", "SamplerConfig"]
