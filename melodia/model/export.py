"""Portable checkpoints and exports: no machine paths, no pickle (``melodia export``).

:func:`strip_paths` takes the absolute paths of the machine that wrote a checkpoint out of its
metadata (``save_checkpoint(portable=True)``, :func:`make_portable`). :func:`export_model` writes a
folder that needs no pickle at all::

    DIR/model.safetensors   the weights (fp16 by default), nothing else
    DIR/config.json         {"format": "melodia-export", ...}: model and encoding configs, step,
                            metrics, the ``extra`` metadata generation reads (control prior,
                            embedding noise, band information), the training config
    DIR/README.md           a model card

:func:`melodia.model.checkpoint.load_checkpoint` reads such a folder like a checkpoint file.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from melodia.model.checkpoint import (EXPORT_FILES, EXPORT_FORMAT, FORMAT, VERSION, Checkpoint,
                                      CheckpointError, _read_torch, load_checkpoint, resolve)
from melodia.model.config import ModelConfig
from melodia.model.registry import resolve_model
from melodia.util.atomic import atomic_write
from melodia.util.portable import strip_paths

log = logging.getLogger("melodia.model.checkpoint")  # as before the split: `melodia export` logs there

def make_portable(path: str | Path) -> Path:
    """Rewrite a checkpoint file in place with :func:`strip_paths` applied to its metadata;
    weights, optimizer and RNG state are written back untouched (bit for bit)."""
    path = resolve(path)
    payload = _read_torch(path, "cpu")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a melodia checkpoint")
    for name in ("metrics", "train_config", "extra"):
        payload[name] = json.dumps(strip_paths(json.loads(payload[name])))
    return atomic_write(path, lambda f: torch.save(payload, f))


DTYPES = {"float16": torch.float16, "float32": torch.float32, "bfloat16": torch.bfloat16}


def export_model(source: str | Path | Checkpoint, out_dir: str | Path,
                 dtype: str = "float16", force: bool = False) -> Path:
    """Write ``source`` (a checkpoint, run directory or shipped model name) as an exported
    folder: ``model.safetensors`` (weights in ``dtype``), ``config.json``, ``README.md``.

    Optimizer and RNG state are left out and metadata goes through :func:`strip_paths`. Files
    of those names that an earlier export did not write (a project's own README.md, another
    tool's config.json) are refused, unless ``force``. Returns ``out_dir``.
    """
    if dtype not in DTYPES:
        raise CheckpointError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if not force:
        _check_not_foreign(Path(out_dir))
    if isinstance(source, Checkpoint):
        ckpt = source
    else:
        ckpt = load_checkpoint(resolve_model(source))
    from safetensors.torch import save as safetensors_bytes

    weights = {k: v.detach().to("cpu", DTYPES[dtype]).contiguous()
               for k, v in ckpt.model.state_dict().items()}
    config = {
        "format": EXPORT_FORMAT, "version": VERSION, "step": ckpt.step, "dtype": dtype,
        "parameters": ckpt.model.num_parameters(),
        "model_config": ckpt.model_config.to_dict(), "encoding": ckpt.encoding.to_dict(),
        "metrics": strip_paths(ckpt.metrics), "extra": strip_paths(ckpt.extra),
        "train_config": strip_paths(ckpt.train_config),
    }
    out = Path(out_dir)
    blob = safetensors_bytes(weights, metadata={"format": EXPORT_FORMAT, "dtype": dtype})
    atomic_write(out / "model.safetensors", lambda f: f.write(blob))
    text = json.dumps(config, indent=1) + "\n"
    atomic_write(out / "config.json", lambda f: f.write(text.encode()))
    card = model_card(config, source=getattr(ckpt.path, "name", None))
    atomic_write(out / "README.md", lambda f: f.write(card.encode()))
    log.info("exported %s (step %d, %s) to %s", ckpt.path, ckpt.step, dtype, out)
    return out


def _check_not_foreign(out: Path) -> None:
    """Refuse to replace files an export of melodia did not write."""
    present = [name for name in (*EXPORT_FILES, "README.md") if (out / name).exists()]
    if not present:
        return
    try:
        ours = json.loads((out / "config.json").read_text()).get("format") == EXPORT_FORMAT
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise CheckpointError(f"{out} already holds {', '.join(present)} that melodia did not "
                              f"write; export into another folder (or pass --force to replace "
                              f"them)")


def _architecture(c: dict[str, Any]) -> str:
    return "transformer, rotary positions" if c.get("kind") == "transformer" else "Performance RNN"


def model_card(config: dict[str, Any], source: str | None = None) -> str:
    """A Markdown model card from an export's ``config.json`` contents."""
    c, extra, metrics = config["model_config"], config["extra"], config["metrics"]
    inputs = [f"{name} {c[name]}" for name in ("control_dim", "state_dim", "band_dim",
                                                "instrument_dim", "meter_dim", "lookback_dim")
              if c.get(name)]
    encoding = config["encoding"]
    lines = [
        f"# melodia {encoding['name']} model", "",
        f"Exported by `melodia export`{f' from `{source}`' if source else ''}: load it with "
        f"`melodia.load(DIR)` or `melodia generate --model DIR` (safetensors + JSON, no pickle).",
        "", "## Architecture", "",
        f"- {_architecture(c)}: {ModelConfig.from_dict(c).describe()}, "
        f"{c['embed_dim']}-dim token embedding ({'tied' if c['tie_embeddings'] else 'untied'} "
        f"output), vocabulary {c['vocab_size']}, dropout {c['dropout']}",
        f"- per-step inputs: {', '.join(inputs) or 'none'}",
        f"- {config['parameters']:,} parameters, stored as {config['dtype']}",
        f"- encoding `{encoding['name']}`: `{json.dumps(encoding.get('config'))}`",
        f"- training step {config['step']}", "",
    ]
    if metrics:
        lines += ["## Metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
                  for k, v in metrics.items() if not isinstance(v, (dict, list))]
        lines += [""]
    for key, title in (("held_out", "Held-out data"), ("baselines", "Held-out NLL vs baselines"),
                       ("evaluation", "Evaluation"), ("sources", "Training data"),
                       ("licences", "Licences"), ("recipe", "Recipe")):
        value = extra.get(key, metrics.get(key) if isinstance(metrics.get(key), dict) else None)
        if not value:
            continue
        lines += [f"## {title}", ""]
        if isinstance(value, dict):
            lines += [f"- {k}: {json.dumps(v) if not isinstance(v, str) else v}"
                      for k, v in value.items()]
        else:
            lines += [f"`{value}`" if key == "recipe" else str(value).rstrip()]
        lines += [""]
    if extra.get("data"):
        lines += ["## Data hashes (sha1)", "", "```", str(extra["data"]).rstrip(), "```", ""]
    used = [k for k in ("control_prior", "embedding_noise", "band") if k in extra]
    if used:
        lines += ["## Generation metadata", "",
                  f"`config.json` carries {', '.join(used)} (read at generation).", ""]
    return "\n".join(lines)


__all__ = ["DTYPES", "export_model", "make_portable", "model_card"]
