"""Experiment tracking: follow each fit in TensorBoard, MLflow or Weights & Biases.

The loggers are skorch callbacks, passed to a network estimator's
``callbacks``; each fit becomes one run holding the estimator's parameters,
the values of every epoch's history row and, for MLflow and W&B, the fitted
network. The tracking libraries are optional (``pip install
"skestimators[tracking]"``) and imported when a fit starts.
"""

from ._mlflow import MLflowLogger
from ._tensorboard import TensorBoardLogger
from ._wandb import WandbLogger

__all__ = ["MLflowLogger", "TensorBoardLogger", "WandbLogger"]
