"""Model families and what carries them: the LSTM, the fast stepper, self-describing
checkpoints, export, and the registry that turns a name ("piano", "band", a file) into a model."""

from melodia.model.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from melodia.model.config import ModelConfig
from melodia.model.export import export_model
from melodia.model.lstm import PerformanceRNN
from melodia.model.registry import SHIPPED, load_model, load_stepper, resolve_model
from melodia.model.stepper import FastStepper

__all__ = ["Checkpoint", "CheckpointError", "FastStepper", "ModelConfig", "PerformanceRNN",
           "SHIPPED", "export_model", "load_checkpoint", "load_model", "load_stepper",
           "resolve_model", "save_checkpoint"]
