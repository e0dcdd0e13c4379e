"""The model families, by ``ModelConfig.kind``: how to build each, count its parameters before
building it, and step it event by event. A new family is a module beside ``lstm.py``,
``transformer.py`` and ``attention_rnn.py`` and one row of :data:`FAMILIES`; checkpoints,
export, training, the samplers, controls and live playing then take it as they are."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import torch
from torch import nn
from torch.nn import init
from torch.overrides import TorchFunctionMode

from melodia.model.attention_rnn import AttentionRNN, AttentionStepper
from melodia.model.attention_rnn import parameter_count as attention_parameters
from melodia.model.config import ModelConfig
from melodia.model.lstm import PerformanceRNN
from melodia.model.lstm import parameter_count as lstm_parameters
from melodia.model.stepper import FastStepper
from melodia.model.transformer import MusicTransformer, TransformerStepper
from melodia.model.transformer import parameter_count as transformer_parameters
from melodia.util.knobs import KnobError


class Family(NamedTuple):
    model: Callable[[ModelConfig], nn.Module]
    parameters: Callable[[ModelConfig], int]
    stepper: Callable[[nn.Module, str], Any]


FAMILIES = {
    "lstm": Family(PerformanceRNN, lstm_parameters, FastStepper),
    "transformer": Family(MusicTransformer, transformer_parameters, TransformerStepper),
    "attention-rnn": Family(AttentionRNN, attention_parameters, AttentionStepper),
}


# the most parameters a model may have (a 3 x 512 LSTM has ~5e6): 8 GB of fp32 weights, three
# times that while Adam trains; a crafted checkpoint or an absurd --hidden-size is refused before
# anything is allocated
MAX_PARAMETERS = 2_000_000_000


def make_model(config: ModelConfig) -> nn.Module:
    """A fresh model of ``config.kind``; its size is checked before any memory is spent."""
    size = estimate_parameters(config)
    if size > MAX_PARAMETERS:
        raise KnobError(f"a {config.num_layers} x {config.hidden_size} {config.kind} has "
                        f"{size:,} parameters ({size * 4 / 1e9:,.0f} GB in fp32); melodia builds "
                        f"at most {MAX_PARAMETERS:,}: lower --hidden-size or --layers")
    return FAMILIES[config.kind].model(config)


def estimate_parameters(config: ModelConfig) -> int:
    """How many parameters the model ``config`` describes has, without building it."""
    return FAMILIES[config.kind].parameters(config)


def make_stepper(model: nn.Module, precision: str = "fp32"):
    """The event-by-event stepper of ``model``'s family (``prime``, ``step``, ``select``)."""
    return FAMILIES[model.config.kind].stepper(model, precision)


def _check_weights(weights: Any, expected: dict[str, tuple[int, ...]]) -> None:
    """Names and shapes of ``weights`` against those of the model their config describes."""
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise ValueError(f"its weights do not match its model_config (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
    for name, shape in expected.items():
        if tuple(weights[name].shape) != shape:
            raise ValueError(f"weight {name} has shape {tuple(weights[name].shape)}, its "
                             f"model_config implies {shape}")


def _check_tensors(weights: Any, size: int) -> None:
    """Float tensors, finite, and about as many numbers as the config's ``size`` parameters:
    so a small file cannot make melodia allocate a huge model before its shapes are compared."""
    if not isinstance(weights, dict) or not weights:
        raise ValueError("holds no model weights")
    for name, tensor in weights.items():
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            raise ValueError(f"weight {name} is not a float tensor")
    numbers = sum(t.numel() for t in weights.values())
    if size > 2 * numbers + 1_000_000:
        raise ValueError(f"its weights hold {numbers:,} numbers but its model_config implies "
                         f"{size:,} parameters")
    broken = [k for k, v in weights.items() if not finite(v)]
    if broken:  # a diverged run: it would "generate" silence without a word
        more = f" and {len(broken) - 1} more" if len(broken) > 1 else ""
        raise ValueError(f"its weights hold NaN or infinite values ({broken[0]}{more}): a "
                         f"diverged training run? Refusing to load it")


def finite(tensor: torch.Tensor) -> bool:
    """Whether every number in a float tensor is finite. Its sum in float64 is finite exactly
    then (a NaN or an infinity carries through; finite float32 values cannot add up to float64's
    range), and summing is 3x faster than ``isfinite().all()`` on the CPU."""
    if tensor.dtype == torch.float64:
        return bool(tensor.isfinite().all())
    return bool(tensor.sum(dtype=torch.float64).isfinite())


class _SkipInit(TorchFunctionMode):
    """In this thread only: the random initialisers do nothing. A model about to receive all its
    weights (names checked) need not draw random ones first: for the shipped piano, a tenth of
    loading it. (A meta-device build would do as well but costs a second: its initialisers
    import torch's compiler.)"""

    SKIPPED = frozenset({torch.Tensor.uniform_, torch.Tensor.normal_, init.uniform_,
                         init.normal_, init.trunc_normal_, init.kaiming_uniform_,
                         init.kaiming_normal_, init.xavier_uniform_, init.xavier_normal_,
                         init.orthogonal_})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.SKIPPED:
            return args[0] if args else kwargs.get("tensor", kwargs.get("self"))
        return func(*args, **kwargs)


def build_model(config: ModelConfig, weights_of: Callable[[], Any],
                max_parameters: int) -> nn.Module:
    """The model a saved config describes (:meth:`ModelConfig.from_saved`), with its weights:
    its size held to ``max_parameters`` before ``weights_of()`` loads anything, the weights'
    names and shapes checked before they are copied in. Raises ValueError (one line)."""
    size = estimate_parameters(config)
    if size > max_parameters:
        raise ValueError(f"its model_config asks for {size:,} parameters (> {max_parameters:,}); "
                         f"refusing to build it")
    weights = weights_of()
    _check_tensors(weights, size)
    with _SkipInit():  # as large as the weights at hand, no more; they replace every value
        model = make_model(config)
    _check_weights(weights, {k: tuple(v.shape) for k, v in model.state_dict().items()})
    model.load_state_dict(weights)
    return model


__all__ = ["FAMILIES", "Family", "build_model", "estimate_parameters", "make_model",
           "make_stepper"]
