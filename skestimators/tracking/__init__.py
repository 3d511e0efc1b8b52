"""Experiment tracking: follow each fit in TensorBoard, MLflow or Weights & Biases.

The loggers are skorch callbacks, passed to a network estimator's
``callbacks``; each fit becomes one run holding the estimator's parameters,
the values of every epoch's history row and, for MLflow and W&B, the fitted
network. The tracking libraries are optional (``pip install
"skestimators[tracking]"``) and imported when a fit starts.
"""

# Names imported "as" themselves are not public (not in __all__): helpers with
# which skestimators.model_selection nests a search's runs under one MLflow run.
from ._common import loggable as loggable
from ._mlflow import MLflowLogger
from ._mlflow import active_run_id as active_run_id
from ._mlflow import end_children as end_children
from ._mlflow import log_metrics as log_metrics
from ._mlflow import log_params as log_params
from ._mlflow import make_client as make_client
from ._mlflow import nested_under as nested_under
from ._mlflow import start_run as start_run
from ._tensorboard import TensorBoardLogger
from ._wandb import WandbLogger

__all__ = ["MLflowLogger", "TensorBoardLogger", "WandbLogger"]
