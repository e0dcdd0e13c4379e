"""Batches on their way to the step: tensors from the compact arrays of :mod:`melodia.training.batches`,
built ahead by background processes, copied to the device, and expanded there into the dense
per-step inputs the model takes."""

from __future__ import annotations

import functools
import math
import sys
from typing import Iterable, Iterator

import numpy as np
import torch

from melodia.features.band import METER_SPANS
from melodia.features.controls import (DENSITY_BINS, HISTOGRAM_PRIOR, NOTE_STATE_PITCHES,
                                       recency_table)
from melodia.training.batches import InputDims, compact_batch


def to_tensors(batch: dict) -> dict:
    """A compact batch's arrays as tensors (sharing memory); counts stay Python ints."""
    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in batch.items()}


def to_device(batch: dict, device: torch.device | str) -> dict:
    """Copy a batch's tensors to ``device`` (non-blocking from pinned memory); ids are sent
    as int16 and widened there."""
    out = {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
           for k, v in batch.items()}
    out["inputs"], out["targets"] = out["inputs"].long(), out["targets"].long()
    return out


def expand_inputs(batch: dict[str, torch.Tensor], dims: InputDims) -> torch.Tensor:
    """The dense per-step inputs ``float32[B, L, dims.total]`` of a compact batch (on its
    device): controls, band conditions, note state, current instrument, meter; zero past each
    crop's ``lengths``. Only kernels, each part written in place into the one output: nothing
    here waits for the GPU or copies from the host (but for constant tables, once per device)."""
    B, L = batch["inputs"].shape
    device = batch["inputs"].device
    out = _zeros((B, L, dims.total), device)
    valid = torch.arange(L, device=device)[None, :] < batch["lengths"][:, None]
    at = 0
    if dims.controls:
        _controls_into(out[..., : dims.controls], batch, valid)
    at += dims.controls
    if dims.band:
        out[..., at : at + dims.band] = batch["band"][:, None, :] * valid[..., None]
    at += dims.band
    if dims.state:
        _note_state_into(out, at, batch, dims.steps_per_second)
    at += dims.state
    if dims.instrument:
        current = batch["instrument"].long()
        onehot = out[..., at : at + dims.instrument]
        onehot.scatter_(2, current.clamp(min=0)[..., None], (current >= 0)[..., None].float())
    at += dims.instrument
    if dims.meter:  # melodia.features.band.meter_features, in float64 as there
        phase = 2 * math.pi * batch["beats"].double()[..., None] / _meter_spans(device)
        meter = torch.cat([torch.sin(phase), torch.cos(phase)], dim=2).float()
        out[..., at : at + dims.meter] = meter * valid[..., None]
    at += dims.meter
    if dims.lookback:  # melodia.features.lookback, zeros past the end already
        out[..., at : at + dims.lookback] = batch["lookback"]
    return out


def _zeros(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """``float32`` zeros. On the CPU from numpy: its big blocks come zeroed from the kernel in
    huge pages (numpy asks for them), where ``torch.zeros`` faults in and clears every 4 KB
    page of a fresh block (a piano batch of 256 x 512: 145 MB, 4x slower)."""
    if device.type == "cpu":
        return torch.from_numpy(np.zeros(shape, np.float32))
    return torch.zeros(shape, device=device)


@functools.lru_cache(maxsize=None)
def _meter_spans(device: torch.device) -> torch.Tensor:
    """METER_SPANS on ``device``, copied there once (a true division by them, as numpy's)."""
    return torch.tensor(METER_SPANS, dtype=torch.float64, device=device)


@functools.lru_cache(maxsize=None)
def _recency(steps_per_second: int, device: torch.device) -> torch.Tensor:
    """:func:`melodia.features.controls.recency_table` on ``device``, copied there once."""
    return torch.from_numpy(recency_table(steps_per_second)).to(device)


def _controls_into(out: torch.Tensor, batch: dict[str, torch.Tensor],
                   valid: torch.Tensor) -> None:
    """The 20 control floats into ``out`` (``[B, L, 20]``, zeros): density one-hot,
    pitch-class shares with Magenta's prior."""
    density, counts = batch["density"].long(), batch["histogram"].float()
    out[..., :DENSITY_BINS].scatter_(2, density.clamp(min=0)[..., None],
                                     (density >= 0)[..., None].float())
    hist = counts + HISTOGRAM_PRIOR
    keep = valid & ~batch["histogram_dropped"][:, None]
    out[..., DENSITY_BINS:] = torch.where(keep[..., None], hist / hist.sum(dim=2, keepdim=True),
                                          0.0)


def _note_state_into(out: torch.Tensor, at: int, batch: dict[str, torch.Tensor],
                     steps_per_second: int) -> None:
    """The note state into columns ``at : at + 256`` of ``out`` (``[B, L, C]``, contiguous
    zeros), from the note intervals: 1 where a pitch sounds, and its recency
    ``exp(-age / NOTE_AGE_TAU_S)`` (looked up, as numpy computes it). One scatter per half
    into the flat output: every (row, pitch) cell is some note's alone."""
    notes, time = batch["state_notes"].long(), batch["state_time"]
    first, rows = notes[:, 0], notes[:, 1]
    total = int(batch["state_cells"])
    note = torch.repeat_interleave(rows, output_size=total)  # each cell's note
    ends = torch.cumsum(rows, 0)
    cell = (first - (ends - rows)).index_select(0, note)
    cell += torch.arange(total, device=out.device)
    age = time.reshape(-1).index_select(0, cell) - notes[:, 3].index_select(0, note)
    where = cell * out.shape[-1] + at
    where += notes[:, 2].index_select(0, note)
    table = _recency(steps_per_second, out.device)
    flat = out.view(-1)
    flat.scatter_(0, where, 1.0)
    recency = table.index_select(0, age.clamp_(max=len(table) - 1))
    flat[NOTE_STATE_PITCHES:].scatter_(0, where, recency)


# ------------------------------------------------------------------------- the loader


class StepBatches(torch.utils.data.Dataset):
    """``steps[k]`` -> this rank's compact batch of optimizer step ``k``: samples
    ``k * batch_size + rank * per_rank`` onwards (each rank builds only its own slice)."""

    def __init__(self, crops, batch_size: int, rank: int = 0, world: int = 1) -> None:
        if batch_size % world:
            raise ValueError(f"batch_size {batch_size} is not divisible by {world} ranks")
        self.crops, self.batch_size, self.rank = crops, batch_size, rank
        self.per_rank = batch_size // world

    def __len__(self) -> int:
        return 2**62  # any step

    def __getitem__(self, step: int) -> dict | tuple:
        first = step * self.batch_size + self.rank * self.per_rank
        batch = compact_batch(self.crops, range(first, first + self.per_rank))
        if torch.utils.data.get_worker_info() is None:
            return to_tensors(batch)
        return pack(batch)  # in a worker: one shared buffer crosses to the trainer


def pack(batch: dict) -> tuple[torch.Tensor, list, dict]:
    """A compact batch as one byte tensor in shared memory, its layout and its counts: one
    buffer per batch crosses between processes instead of one per array."""
    arrays = {k: np.ascontiguousarray(v) for k, v in batch.items() if isinstance(v, np.ndarray)}
    layout, size = [], 0
    for key, value in arrays.items():
        size = -(-size // 8) * 8  # aligned for any dtype
        layout.append((key, value.dtype.str, value.shape, size))
        size += value.nbytes
    buffer = torch.empty(size, dtype=torch.uint8).share_memory_()
    flat = buffer.numpy()
    for key, _, _, at in layout:
        flat[at : at + arrays[key].nbytes] = arrays[key].reshape(-1).view(np.uint8)
    return buffer, layout, {k: v for k, v in batch.items() if k not in arrays}


def unpack(buffer: torch.Tensor, layout: list, counts: dict) -> dict:
    """The tensors of a :func:`pack` ed batch: views of its buffer (pinned if it is)."""
    out = dict(counts)
    for key, dtype, shape, at in layout:
        kind = torch.from_numpy(np.empty(0, dtype=dtype)).dtype
        size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        out[key] = buffer[at : at + size].view(kind).reshape(shape)
    return out


def keep_freed_memory() -> bool:
    """Let this process's allocator keep the memory it frees, for the next batch.

    A batch is built of many numpy temporaries of about half a megabyte. By default glibc's
    malloc gives such blocks back to the system as they are freed (unmapping them, or trimming
    the heap), so every batch faults its pages in again: a quarter of a band batch's time on a
    virtual machine. Here blocks under 32 MB come from the heap and up to 256 MB of freed heap
    stays mapped. Loader workers call it as they start. Returns False (and changes nothing)
    where the C library has no ``mallopt`` (not glibc)."""
    import ctypes

    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 256 << 20))


def _worker_start(worker_id: int) -> None:
    keep_freed_memory()


def auto_workers(device: torch.device, world: int = 1) -> int:
    """Background batch builders: none on a CPU (the step dwarfs the batch there, and workers
    would take its cores); on a GPU, up to 4 per rank, leaving each rank a core of its own."""
    if device.type != "cuda":
        return 0
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(0, min(4, (cores or 1) // max(world, 1) - 1))


def batch_loader(crops, steps: Iterable[int], batch_size: int, rank: int = 0, world: int = 1,
                 workers: int = 0, pin_memory: bool = False) -> Iterator[dict]:
    """The compact batches of ``steps``, in order, built ``workers`` processes ahead (0: in the
    calling thread), pinned when ``pin_memory`` (for non-blocking copies to a GPU)."""
    from torch.utils.data import DataLoader

    steps = steps if isinstance(steps, range) else list(steps)
    if not len(steps):
        return iter(())
    loader = DataLoader(StepBatches(crops, batch_size, rank, world), batch_size=None,
                        sampler=steps, num_workers=workers, pin_memory=pin_memory,
                        prefetch_factor=4 if workers else None,
                        worker_init_fn=_worker_start if workers else None)
    if not workers:
        return iter(loader)
    return (unpack(*packed) for packed in loader)


__all__ = ["StepBatches", "auto_workers", "batch_loader", "expand_inputs", "keep_freed_memory",
           "pack", "to_device", "to_tensors", "unpack"]
