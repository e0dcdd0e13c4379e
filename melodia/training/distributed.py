"""Devices and DistributedDataParallel for the trainer: which device a rank uses, joining the
process group torchrun describes (failing in one line, never hanging), summing over ranks."""

from __future__ import annotations

import os

import torch

from melodia.errors import MelodiaError

DDP_TIMEOUT_S = float(os.environ.get("MELODIA_DDP_TIMEOUT_S", "300"))  # join + each collective
_LAUNCH = "launch with `torchrun --nproc-per-node N -m melodia.cli train ...` (N <= GPUs per machine)"


def join_process_group(device: str) -> tuple[int, int, bool]:
    """(rank, world size, whether we created the process group) from torchrun's environment.
    A broken launch (variables missing, a rank that never comes) fails with one line after at
    most ``DDP_TIMEOUT_S`` (env ``MELODIA_DDP_TIMEOUT_S``) instead of hanging."""
    import datetime

    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, False
    created = not dist.is_initialized()
    if created:
        missing = [v for v in ("RANK", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
        if missing:
            raise MelodiaError(f"WORLD_SIZE={world} but {', '.join(missing)} not set: {_LAUNCH}")
        backend = "nccl" if device.startswith("cuda") else "gloo"
        try:
            dist.init_process_group(backend, timeout=datetime.timedelta(seconds=DDP_TIMEOUT_S))
        except (RuntimeError, ValueError) as err:  # DistStoreError, DistNetworkError among them
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise MelodiaError(f"rank {os.environ['RANK']} of {world} could not join the {backend} "
                               f"process group within {DDP_TIMEOUT_S:.0f} s ({first[:200]}): "
                               f"{_LAUNCH}") from None
    return dist.get_rank(), dist.get_world_size(), created


def check_local_rank(local_rank: int, gpus: int) -> None:
    """Refuse a launch with more processes per machine than GPUs (they would share one GPU)."""
    if local_rank >= gpus:
        raise MelodiaError(f"LOCAL_RANK {local_rank}, but this machine has {gpus} GPU"
                           f"{'s' if gpus != 1 else ''}: {_LAUNCH}")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MelodiaError("device cuda asked for, but torch sees no CUDA GPU")
    if name == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        check_local_rank(local_rank, torch.cuda.device_count())
        name = f"cuda:{local_rank}"
    return torch.device(name)


def all_reduce(t: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(t)
    return t


__all__ = ["DDP_TIMEOUT_S", "all_reduce", "check_local_rank", "join_process_group", "resolve_device"]
