"""Runs, learning curves and fitted networks in Weights & Biases, offline."""

from __future__ import annotations

import os

from sklearn.utils._param_validation import StrOptions

from ._common import TrackingCallback, import_tracking, make_folder, model_files

__all__ = ["WandbLogger"]


class WandbLogger(TrackingCallback):
    """Log each fit to Weights & Biases, offline unless told otherwise.

    A skorch callback: pass it to a network estimator's ``callbacks``. Every
    fit is one W&B run (``wandb.init(..., reinit="create_new")``, so that
    runs of parallel fits in one process stay apart), finished at the end of
    the fit. The run records:

    - the estimator's parameters as its ``config`` (numbers, strings, and the
      ``repr`` of other values, cut to 250 characters);
    - after each epoch, every numeric value of the history row
      (``train_loss``, ``valid_loss``, ``dur``, per-target metrics such as
      ``valid_r2`` or ``valid_<target>_roc_auc``), with the epoch number as
      step; NaN values are skipped;
    - at the end, with ``log_model=True``, an artifact of type ``"model"``
      named ``model-<run id>`` holding ``module_state_dict.pt`` (the module's
      ``state_dict``, saved with :func:`torch.save`) and ``history.json``.

    Offline (the default) nothing is sent: each run is a folder
    ``wandb/offline-run-<time>-<id>`` under ``dir``, which ``wandb sync``
    uploads later, and which ``wandb leet inspect`` reads locally. A fit that
    raises (or diverges, or is interrupted) finishes its run failed (exit
    code 1), without the network, and the error goes on.

    Requires ``wandb`` (``pip install "skestimators[tracking]"``), imported
    when a fit starts. W&B's own environment variables (``WANDB_DIR``,
    ``WANDB_MODE``, ``WANDB_DATA_DIR`` for staged artifacts...) apply to
    what these parameters leave unset.

    Parameters
    ----------
    project : str, default="skestimators"
        W&B project of the runs.
    dir : str, path-like or None, default=None
        Folder in which W&B writes its ``wandb/`` folder of runs (created
        when missing); None uses ``WANDB_DIR``, or else the working directory.
    mode : {"offline", "online", "disabled"} or None, default=None
        W&B's mode: ``"offline"`` writes locally only; ``"online"`` uploads
        (needs ``wandb login``); ``"disabled"`` logs nothing. None uses
        ``WANDB_MODE`` (``WANDB_MODE=disabled`` turns every run off, in a
        CI job say), or else ``"offline"``.
    name : str or None, default=None
        Display name of the runs; None uses the estimator's class name.
    group : str or None, default=None
        Group of the runs (for instance the folds of one cross-validation).
    tags : list of str or None, default=None
        Tags of every run.
    log_model : bool, default=True
        Log the fitted network's weights and history as an artifact.

    Attributes
    ----------
    run_id_ : str
        The id of the last fit's run.
    run_dir_ : str
        Its local folder (holding ``run-<id>.wandb``), for ``wandb sync``.
    run_ : wandb.Run
        The open run, during a fit only.

    See Also
    --------
    TensorBoardLogger : Learning curves as TensorBoard event files.
    MLflowLogger : Runs, metrics and the fitted model in MLflow.

    Examples
    --------
    >>> from skestimators.tracking import WandbLogger
    >>> logger = WandbLogger(project="soil-carbon", dir="wandb-runs", group="cnn")
    >>> logger.get_params()["mode"] is None  # WANDB_MODE, else offline
    True

    Every ``fit`` of a network holding the logger writes one offline run,
    which ``wandb sync`` uploads later:

    >>> from sklearn.datasets import make_regression
    >>> from skestimators import NetRegressor
    >>> X, y = make_regression(100, 4, random_state=0)
    >>> model = NetRegressor(max_epochs=3, callbacks=[("wandb", logger)])
    >>> model.fit(X, y)  # doctest: +SKIP
    >>> logger.run_dir_  # doctest: +SKIP
    'wandb-runs/wandb/offline-run-20250131_142501-3k9xq2ab'
    """

    _handles = ("run_",)
    _parameter_constraints: dict = {
        "project": [str],
        "dir": [str, os.PathLike, None],
        "mode": [StrOptions({"offline", "online", "disabled"}), None],
        "name": [str, None],
        "group": [str, None],
        "tags": [list, tuple, None],
        "log_model": ["boolean"],
    }

    def __init__(
        self,
        project="skestimators",
        *,
        dir=None,
        mode=None,
        name=None,
        group=None,
        tags=None,
        log_model=True,
    ):
        self.project = project
        self.dir = dir
        self.mode = mode
        self.name = name
        self.group = group
        self.tags = tags
        self.log_model = log_model

    def _start_run(self, name, params):
        wandb = import_tracking("wandb", "wandb")
        directory = None if self.dir is None else os.fspath(self.dir)
        if directory is not None:
            make_folder(directory, "WandbLogger", "dir", self.dir)
        self.run_ = wandb.init(
            project=self.project,
            dir=directory,
            mode=self.mode or os.environ.get("WANDB_MODE") or "offline",
            name=self.name or name,
            group=self.group,
            tags=None if self.tags is None else list(self.tags),
            config=params,
            reinit="create_new",
        )
        self.run_id_ = self.run_.id
        self.run_dir_ = os.path.dirname(self.run_.dir)

    def _log_epoch(self, step, metrics):
        self.run_.log(metrics, step=step)

    def _end_run(self, net):
        run = self.run_
        if self.log_model:
            wandb = import_tracking("wandb", "wandb")
            artifact = wandb.Artifact(f"model-{run.id}", type="model")
            with model_files(net) as folder:
                # Files are copied to W&B's staging folder when added.
                artifact.add_dir(folder)
                run.log_artifact(artifact)
        run.finish()

    def _abandon_run(self, killed=False):
        self.run_.finish(exit_code=1)  # W&B marks any non-zero exit "failed"

    def _tag(self, tags):
        # In the run's config, where W&B filters runs by value.
        self.run_.config.update(dict(tags), allow_val_change=True)
