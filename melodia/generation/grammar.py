"""Grammar masks: what a generated stream has played so far, and which events may follow.

:class:`Grammar` keeps every generated stream playable (note-offs only for sounding notes, bounded
polyphony and note length, no runaway waits, velocity before note-on, the piano's range), and
tracks the note state the models take as an input (:meth:`Grammar.note_state`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from melodia.encoding import PerformanceEncoding
from melodia.encoding.events import NOTE_OFF, NOTE_ON, PROGRAM, TIME_SHIFT, VELOCITY, lookup_tables
from melodia.features.controls import NOTE_AGE_TAU_S, NOTE_STATE_PITCHES

_NEVER = np.iinfo(np.int64).max // 4  # "no limit" in time steps
_DRUMS = 128  # the band encoding's drum kit (melodia.features.band.DRUMS)


@dataclass
class GrammarConfig:
    """Rules that keep a generated stream playable. ``None`` switches a rule off."""

    max_polyphony: int | None = 16  # notes sounding at once (re-striking a sounding pitch is fine)
    max_note_s: float | None = 5.0  # force the note-off after this long (Magenta: 5 s)
    max_wait_s: float | None = 3.0  # longest time between note-ons: no runaway time-shift output
    max_events_per_step: int | None = 64  # events at one instant (NOTE_OFFs not counted)
    velocity_before_note_on: bool = True  # a VELOCITY event is followed by a NOTE_ON, as encoded
    pitch_range: tuple[int, int] | None = (21, 108)  # NOTE_ONs allowed: the 88 keys of a piano
    # band encoding: the only instruments (GM programs, 128 = drums) that may be chosen and play
    instruments: tuple[int, ...] | None = None
    tempo_changes: bool = True  # band encoding: False = no TEMPO events (the tempo is given)
    # band encoding: each instrument's pitch range {program: (low, high)} (as its corpus plays;
    # melodia.features.band.instrument_profile) and the instruments that play one note at a time
    instrument_ranges: dict[int, tuple[int, int]] | None = None
    monophonic: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("max_polyphony", "max_events_per_step"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None")
        for name in ("max_note_s", "max_wait_s"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0 or None")
        if self.pitch_range is not None:
            low, high = (int(p) for p in self.pitch_range)
            if not 0 <= low <= high <= 127:
                raise ValueError(f"pitch_range must be (low, high) within 0..127, not "
                                 f"{self.pitch_range}")
            self.pitch_range = (low, high)
        if self.instruments is not None:
            self.instruments = tuple(sorted({int(i) for i in self.instruments}))
            if not self.instruments or not all(0 <= i <= 128 for i in self.instruments):
                raise ValueError("instruments must be GM programs 0..127 or 128 (drums), at "
                                 "least one")
        if (self.max_events_per_step is not None and self.max_polyphony is not None
                and self.max_events_per_step < self.max_polyphony):
            raise ValueError("max_events_per_step must be >= max_polyphony (forced note-offs of "
                             "all sounding instruments must fit in one instant)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Grammar:
    """What each of ``batch`` generated streams has played so far, and which events may follow.

    :meth:`mask` gives ``[B, V]`` bool (True = allowed); :meth:`update` advances by one event per
    row, :meth:`advance` does both. The rules, each switchable through :class:`GrammarConfig`:

    - a NOTE_OFF only for a pitch that is sounding (on the current PROGRAM, band encoding);
    - a NOTE_ON of a new pitch only while fewer than ``max_polyphony`` notes sound;
    - a note that has sounded ``max_note_s`` must end now: only its NOTE_OFF (band: or the PROGRAM
      selecting its instrument) is allowed, and no TIME_SHIFT may carry a note past that length;
    - no TIME_SHIFT taking the wait since the last NOTE_ON past ``max_wait_s``;
    - after ``max_events_per_step`` events at one instant (NOTE_OFFs not counted: they are
      bounded by the note-ons) only TIME_SHIFTs;
    - after a VELOCITY only a NOTE_ON, and a VELOCITY only when a NOTE_ON may follow it;
    - NOTE_ONs only within ``pitch_range`` (default the piano's 21..108; drums too lie inside);
    - band: each instrument's NOTE_ONs within its ``instrument_ranges`` entry, and a
      ``monophonic`` instrument's only while none of its notes sounds;
    - band: no PROGRAM, NOTE_ON or NOTE_OFF of a *given* instrument (:meth:`give`: its notes
      are forced from outside, and count only in the note state);
    - band: no PROGRAM right after a PROGRAM, nor one choosing the instrument already chosen;
      PROGRAM events only for ``instruments`` (the line-up), and no VELOCITY or NOTE_ON
      while the current instrument is outside it; no TEMPO events unless ``tempo_changes``.

    Should the rules leave a row nothing (only a contrived config can), ``TIME_SHIFT 1`` is allowed.
    """

    def __init__(self, encoding: PerformanceEncoding, config: GrammarConfig | None = None,
                 batch: int = 1) -> None:
        self.config = config or GrammarConfig()
        vocab, sps = encoding.vocab, encoding.config.steps_per_second
        self.kinds, self.values = lookup_tables(vocab)
        self.vocab_size, self.batch = vocab.size, batch
        note = vocab.range("NOTE_ON")
        self.min_pitch, self.n_pitches = note.min, note.size
        self.on0, self.off0 = vocab.offset("NOTE_ON"), vocab.offset("NOTE_OFF")
        first_velocity = vocab.offset("VELOCITY")
        self.vel = slice(first_velocity, first_velocity + vocab.range("VELOCITY").size)
        shifts = vocab.range("TIME_SHIFT")
        self.shift = slice(vocab.offset("TIME_SHIFT"), vocab.offset("TIME_SHIFT") + shifts.size)
        self.shift_steps = np.arange(shifts.min, shifts.max + 1)
        types = [r.type for r in vocab.ranges]
        self.prog0 = vocab.offset("PROGRAM") if "PROGRAM" in types else None
        n_instruments = vocab.range("PROGRAM").size if self.prog0 is not None else 1
        c = self.config
        self.sps = sps
        self.out_of_range = np.zeros(self.n_pitches, dtype=bool)
        if c.pitch_range is not None:
            pitches = np.arange(self.min_pitch, self.min_pitch + self.n_pitches)
            self.out_of_range = (pitches < c.pitch_range[0]) | (pitches > c.pitch_range[1])
        self.max_note_steps = None if c.max_note_s is None else max(1, round(c.max_note_s * sps))
        self.max_wait_steps = None if c.max_wait_s is None else max(1, round(c.max_wait_s * sps))
        self.on = slice(self.on0, self.on0 + self.n_pitches)
        self.off = slice(self.off0, self.off0 + self.n_pitches)
        self.sounding = np.zeros((batch, n_instruments, self.n_pitches), dtype=bool)
        self.count = np.zeros(batch, dtype=np.int64)  # notes sounding
        self._rows = np.arange(batch)
        self.onset = np.zeros((batch, n_instruments, self.n_pitches), dtype=np.int64)
        self.now = np.zeros(batch, dtype=np.int64)  # time steps since the stream began
        self.wait = np.zeros(batch, dtype=np.int64)  # steps since the last NOTE_ON
        self.at_step = np.zeros(batch, dtype=np.int64)  # events but NOTE_OFFs since a TIME_SHIFT
        self.instrument = np.zeros(batch, dtype=np.int64)
        self.last_kind = np.full(batch, -1, dtype=np.int64)
        self.last_value = np.zeros(batch, dtype=np.int64)
        self.n_instruments = n_instruments
        self.programmed = np.zeros(batch, dtype=bool)  # a PROGRAM event has chosen the instrument
        # the note state the models see (melodia.features.controls.note_state): melodic pitches pooled
        # over instruments, from a NOTE_ON until the next NOTE_OFF of the pitch, drums left out
        self.pooled = np.zeros((batch, self.n_pitches), dtype=bool)
        self.pooled_onset = np.zeros((batch, self.n_pitches), dtype=np.int64)
        # [n_instruments] bool: instruments whose notes come from outside (given material,
        # forced into the stream): they feed the note state only; the model may not choose them
        self.given = np.zeros(n_instruments, dtype=bool)
        self.in_lineup = None  # [n_instruments] bool: who may play
        if self.prog0 is not None and c.instruments is not None:
            self.in_lineup = np.zeros(n_instruments, dtype=bool)
            self.in_lineup[[i for i in c.instruments if i < n_instruments]] = True
        self.range_ok = None  # [n_instruments, n_pitches] bool: NOTE_ONs each instrument may play
        if self.prog0 is not None and c.instrument_ranges:
            self.range_ok = np.ones((n_instruments, self.n_pitches), dtype=bool)
            pitches = np.arange(self.min_pitch, self.min_pitch + self.n_pitches)
            for inst, (low, high) in c.instrument_ranges.items():
                if 0 <= int(inst) < n_instruments:
                    self.range_ok[int(inst)] = (pitches >= int(low)) & (pitches <= int(high))
        self.mono = np.zeros(n_instruments, dtype=bool)
        if self.prog0 is not None and c.monophonic:
            self.mono[[int(i) for i in c.monophonic if 0 <= int(i) < n_instruments]] = True
        self.tempo = None
        if "TEMPO" in types and not c.tempo_changes:
            t0 = vocab.offset("TEMPO")
            self.tempo = slice(t0, t0 + vocab.range("TEMPO").size)

    _STATE = ("sounding", "onset", "count", "now", "wait", "at_step", "instrument", "last_kind",
              "programmed", "pooled", "pooled_onset")

    def select(self, rows: np.ndarray) -> None:
        """Keep (and repeat) rows, e.g. after a beam-search pruning step."""
        for name in self._STATE:
            setattr(self, name, getattr(self, name)[rows])
        self.batch = len(rows)
        self._rows = np.arange(self.batch)

    def give(self, instruments) -> None:
        """From now on the notes of ``instruments`` are given (forced from outside): they count
        in the note state the model sees, not in its polyphony, note lengths or waits, and the
        model may neither select those instruments nor end their notes. ``()``: none."""
        self.given[:] = False
        self.given[[int(i) for i in instruments if 0 <= int(i) < self.n_instruments]] = True

    def feed(self, ids) -> np.ndarray:
        """Advance every row through the same events (a primer); the mask that follows them."""
        for event in np.asarray(ids, dtype=np.int64).tolist():
            self.update(np.full(self.batch, event))
        return self.mask()

    def advance(self, ids: np.ndarray, parents: np.ndarray | None = None) -> np.ndarray:
        """Row ``b`` continues row ``parents[b]`` (a beam search's survivors; None: itself) with
        the event ``ids[b]``; the mask of what each row may play next."""
        if parents is not None:
            self.select(parents)
        self.update(ids)
        return self.mask()

    def update(self, ids: np.ndarray) -> None:
        """Advance row ``b`` by the event ``ids[b]``."""
        kind, value = self.kinds[ids], self.values[ids]
        shift = kind == TIME_SHIFT
        moved = np.where(shift, value, 0)
        self.now += moved
        self.wait += moved
        self.at_step = np.where(shift, 0, self.at_step + (kind != NOTE_OFF))
        for wanted in (NOTE_ON, NOTE_OFF):
            rows = np.flatnonzero(kind == wanted)
            if len(rows) and self.given.any():  # given notes: the note state only
                given = self.given[self.instrument[rows]]
                heard = rows[given][self.instrument[rows[given]] != _DRUMS]
                self.pooled[heard, value[heard] - self.min_pitch] = wanted == NOTE_ON
                if wanted == NOTE_ON:
                    self.pooled_onset[heard, value[heard] - self.min_pitch] = self.now[heard]
                    self.wait[rows[given]] = 0  # the music goes on: silence is no runaway
                rows = rows[~given]
            if len(rows):
                index = (rows, self.instrument[rows], value[rows] - self.min_pitch)
                was = self.sounding[index]
                melodic = rows[self.instrument[rows] != _DRUMS]
                pooled = (melodic, value[melodic] - self.min_pitch)
                if wanted == NOTE_ON:
                    self.count[rows] += ~was
                    self.sounding[index] = True
                    self.onset[index] = self.now[rows]
                    self.wait[rows] = 0
                    self.pooled[pooled] = True
                    self.pooled_onset[pooled] = self.now[melodic]
                else:
                    self.count[rows] -= was
                    self.sounding[index] = False
                    self.pooled[pooled] = False
        if self.prog0 is not None:
            self.instrument = np.where(kind == PROGRAM, value, self.instrument)
            self.programmed |= kind == PROGRAM
        self.last_kind, self.last_value = kind, value

    def note_state(self) -> np.ndarray:
        """``float32[B, NOTE_STATE_DIM]``: what :func:`melodia.features.controls.note_state` gives for the
        stream so far (a band's melodic instruments share the pitch state, drums are left out)."""

        sounding, onset = self.pooled, self.pooled_onset
        out = np.zeros((self.batch, 2 * NOTE_STATE_PITCHES), dtype=np.float32)
        lo = self.min_pitch
        hi = min(self.min_pitch + self.n_pitches, NOTE_STATE_PITCHES)
        age_s = (self.now[:, None] - onset) / self.sps
        recency = np.where(sounding, np.exp(-np.where(sounding, age_s, 0.0) / NOTE_AGE_TAU_S), 0)
        out[:, lo:hi] = sounding[:, : hi - lo]
        out[:, NOTE_STATE_PITCHES + lo : NOTE_STATE_PITCHES + hi] = recency[:, : hi - lo]
        return out

    def instrument_onehot(self) -> np.ndarray:
        """``float32[B, 129]``: the current instrument of each row (band models' step input)."""
        out = np.zeros((self.batch, self.n_instruments), dtype=np.float32)
        out[self._rows, self.instrument] = 1.0
        return out

    def mask(self) -> np.ndarray:
        """``[B, V]`` bool: the events each row may emit next."""
        c = self.config
        allowed = np.ones((self.batch, self.vocab_size), dtype=bool)
        on, off, vel = self.on, self.off, self.vel
        current = self.sounding[self._rows, self.instrument]
        allowed[:, off] = current
        if self.out_of_range.any():
            allowed[:, on] &= ~self.out_of_range
        if self.prog0 is not None:  # a PROGRAM is followed by its instrument's events, as encoded
            programs = allowed[:, self.prog0 : self.prog0 + self.n_instruments]
            programs[self.last_kind == PROGRAM] = False
            programs[self._rows, self.instrument] &= ~self.programmed
        if self.in_lineup is not None:
            allowed[:, self.prog0 : self.prog0 + self.n_instruments] &= self.in_lineup
            outside = ~self.in_lineup[self.instrument]
            allowed[outside, on] = False
        if self.given.any():  # given instruments play only what is forced
            allowed[:, self.prog0 : self.prog0 + self.n_instruments] &= ~self.given
            allowed[self.given[self.instrument], on] = False
        if self.range_ok is not None:
            allowed[:, on] &= self.range_ok[self.instrument]
        if self.mono.any():
            allowed[self.mono[self.instrument] & current.any(axis=1), on] = False
        if self.tempo is not None:
            allowed[:, self.tempo] = False
        if c.max_polyphony is not None:
            full = self.count >= c.max_polyphony
            if full.any():
                allowed[full, on] = current[full]
        limit, overdue = None, ()
        if self.max_note_steps is not None and self.count.any():
            first_onset = np.where(self.sounding, self.onset, _NEVER).min(axis=(1, 2))
            limit = np.where(self.count > 0, self.max_note_steps - (self.now - first_onset), _NEVER)
            overdue = np.flatnonzero(limit <= 0)
        if self.max_wait_steps is not None:
            waits = self.max_wait_steps - self.wait
            limit = waits if limit is None else np.minimum(limit, waits)
        if limit is not None:
            allowed[:, self.shift] = self.shift_steps <= limit[:, None]
        if c.max_events_per_step is not None:
            busy = self.at_step >= c.max_events_per_step
            if busy.any():
                allowed[busy, : self.shift.start] = False
                allowed[busy, self.shift.stop :] = False
        if c.velocity_before_note_on:
            no_room = ~allowed[:, on].any(axis=1)
            if c.max_events_per_step is not None:
                no_room |= self.at_step + 2 > c.max_events_per_step
            allowed[no_room, vel] = False
            after = np.flatnonzero(self.last_kind == VELOCITY)
            if len(after):
                kept = allowed[after, on]
                allowed[after] = False
                allowed[after, on] = kept
        for b in overdue:  # force the note-off of notes that have sounded max_note_s
            late = self.sounding[b] & (self.now[b] - self.onset[b] >= self.max_note_steps)
            allowed[b] = False
            allowed[b, off] = here = late[self.instrument[b]]
            if self.prog0 is not None and not here.any():
                allowed[b, self.prog0 + np.flatnonzero(late.any(axis=1))] = True
        empty = ~allowed.any(axis=1)
        if empty.any():
            allowed[empty, self.shift.start] = True
        return allowed


__all__ = ["Grammar", "GrammarConfig"]
