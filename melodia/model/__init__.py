"""Model families and what carries them: the LSTM and the transformer with their steppers,
self-describing checkpoints, export, and the registry that turns a name ("piano", "band", a file)
into a loaded model."""

from melodia.model.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from melodia.model.config import ModelConfig
from melodia.model.export import export_model
from melodia.model.families import make_model, make_stepper
from melodia.model.lstm import PerformanceRNN
from melodia.model.registry import SHIPPED, load_model, load_stepper, resolve_model
from melodia.model.stepper import FastStepper
from melodia.model.transformer import MusicTransformer, TransformerStepper

__all__ = ["Checkpoint", "CheckpointError", "FastStepper", "ModelConfig", "MusicTransformer",
           "PerformanceRNN", "SHIPPED", "TransformerStepper", "export_model", "load_checkpoint",
           "load_model", "load_stepper", "make_model", "make_stepper", "resolve_model",
           "save_checkpoint"]
