"""Training: config, data and crops, batches, the loader, distributed runs, the trainer.

::

    from melodia.training import TrainConfig, train
"""

from melodia.training.config import TrainConfig, run_config
from melodia.training.trainer import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "run_config", "train"]
