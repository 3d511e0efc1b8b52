"""Learning curves and parameters of each fit as TensorBoard event files."""

from __future__ import annotations

import itertools
import os
import time

from ._common import TrackingCallback, import_tracking, make_folder

__all__ = ["TensorBoardLogger"]


class TensorBoardLogger(TrackingCallback):
    """Write each fit's learning curves and parameters for TensorBoard.

    A skorch callback: pass it to a network estimator's ``callbacks``. Every
    fit writes one run, a new subdirectory of ``log_dir`` holding an event
    file (through :class:`torch.utils.tensorboard.SummaryWriter`), which
    ``tensorboard --logdir log_dir`` shows beside the other runs:

    - the estimator's parameters at the start, as a table (text tab,
      ``params``), and at the end as hyper-parameters with the last value of
      every metric (HParams tab), to compare runs;
    - after each epoch, every numeric value of the history row (``train_loss``,
      ``valid_loss``, ``dur``, per-target metrics such as ``valid_r2`` or
      ``valid_<target>_roc_auc``) as a scalar, with the epoch number as step.

    Requires the ``tensorboard`` package (``pip install
    "skestimators[tracking]"``), imported when a fit starts.

    Parameters
    ----------
    log_dir : str or path-like
        Folder of the runs (created when needed).
    prefix : str or None, default=None
        Start of the name of each run's subdirectory, followed by the time
        the fit started (``<prefix>-20240131-142501``, with ``-1``, ``-2``...
        added when that name exists); None uses the estimator's class name.

    Attributes
    ----------
    log_dir_ : str
        The subdirectory written by the last fit (its event file's folder).
    metric_names_ : list of str
        The scalars logged by the last fit.
    params_ : dict
        The parameters logged by the last fit.
    writer_ : torch.utils.tensorboard.SummaryWriter
        The open writer, during a fit only.

    See Also
    --------
    MLflowLogger : Runs, metrics and the fitted model in MLflow.
    WandbLogger : Runs in Weights & Biases, offline by default.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sklearn.datasets import make_regression
    >>> from skestimators import NetRegressor
    >>> from skestimators.tracking import TensorBoardLogger
    >>> X, y = make_regression(100, 4, random_state=0)
    >>> logger = TensorBoardLogger(tempfile.mkdtemp(), prefix="mlp")
    >>> model = NetRegressor(
    ...     max_epochs=3, callbacks=[("tensorboard", logger)], random_state=0
    ... ).fit(X, y)
    >>> Path(logger.log_dir_).name.startswith("mlp-")
    True
    >>> logger.metric_names_ == model.history_.columns.tolist()
    True
    """

    _handles = ("writer_",)
    _parameter_constraints: dict = {
        "log_dir": [str, os.PathLike],
        "prefix": [str, None],
    }

    def __init__(self, log_dir, *, prefix=None):
        self.log_dir = log_dir
        self.prefix = prefix

    def _start_run(self, name, params):
        tensorboard = import_tracking("torch.utils.tensorboard", "tensorboard")
        make_folder(self.log_dir, "TensorBoardLogger", "log_dir", self.log_dir)
        self.log_dir_ = make_run_dir(self.log_dir, self.prefix or name)
        self.writer_ = tensorboard.SummaryWriter(log_dir=self.log_dir_)
        self.params_ = params
        self.metric_names_ = []
        self.writer_.add_text("params", params_table(name, params), global_step=0)
        self.writer_.flush()

    def _log_epoch(self, step, metrics):
        for key, value in metrics.items():
            self.writer_.add_scalar(key, value, global_step=step)
            if key not in self.metric_names_:
                self.metric_names_.append(key)

    def _end_run(self, net):
        writer = self.writer_
        if self.metric_names_:
            # The HParams tab reads each metric's last value from its scalars.
            from torch.utils.tensorboard.summary import hparams

            values = {
                k: v if isinstance(v, (bool, int, float, str)) else str(v)
                for k, v in self.params_.items()
            }
            for summary in hparams(values, dict.fromkeys(self.metric_names_, 0.0)):
                writer.file_writer.add_summary(summary)
        writer.flush()
        writer.close()

    def _abandon_run(self, killed=False):
        self.writer_.close()

    def _run_ref(self):
        return getattr(self, "log_dir_", None)

    def _tag(self, tags):
        # Text entries (the TEXT tab): the checkpoint, the run continued, a
        # finished checkpoint only read back.
        for key, value in tags.items():
            self.writer_.add_text(key, str(value), global_step=0)


def make_run_dir(log_dir, name) -> str:
    """Create ``log_dir/<name>-<time>`` (``-1``, ``-2``... when taken); return it."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in itertools.count():
        path = os.path.join(
            os.fspath(log_dir), f"{name}-{stamp}" + (f"-{i}" if i else "")
        )
        try:
            os.makedirs(path)
        except FileExistsError:
            continue
        return path


def params_table(name, params) -> str:
    """The parameters as a Markdown table (TensorBoard renders it)."""
    lines = [f"**{name}**", "", "| parameter | value |", "| --- | --- |"]
    for key, value in params.items():
        text = str(value).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {key} | {text} |")
    return "\n".join(lines)
