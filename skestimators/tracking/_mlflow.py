"""Runs, learning curves and fitted networks in MLflow, through an explicit client."""

from __future__ import annotations

import contextlib
import contextvars
import errno
import hashlib
import os
import re
import socket
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from ._common import TrackingCallback, import_tracking, make_folder, model_files

__all__ = ["MLflowLogger"]

PACKAGE = "mlflow-skinny"
PARENT_TAG = "mlflow.parentRunId"
# MLflow names may hold letters, digits and ``_ - . / : `` and spaces.
_NOT_IN_NAME = re.compile(r"[^\w\-./: ]")
# log_batch accepts at most 100 parameters and 1000 metrics per call.
_BATCH = 100
# Longest parameter or metric name MLflow accepts.
MAX_KEY_LENGTH = 250


class MLflowLogger(TrackingCallback):
    """Log each fit to MLflow: parameters, learning curves and the network.

    A skorch callback: pass it to a network estimator's ``callbacks``. Every
    fit is one MLflow run of ``experiment_name`` (created when missing),
    written through ``mlflow.tracking.MlflowClient(tracking_uri)``; the
    global MLflow state (``mlflow.set_tracking_uri``, ``mlflow.start_run``) is
    left alone, except that a run started with ``mlflow.start_run()`` in this
    thread becomes the parent of the fit's run when ``parent_run_id`` is None.
    The run records:

    - the estimator's parameters (numbers, strings, and the ``repr`` of other
      values, cut to 250 characters), and its class name as the tag
      ``estimator``;
    - after each epoch, every numeric value of the history row
      (``train_loss``, ``valid_loss``, ``dur``, per-target metrics such as
      ``valid_r2`` or ``valid_<target>_roc_auc``), with the epoch number as
      step; NaN values are skipped. A name MLflow refuses (from a target
      name with characters other than letters, digits, ``_ - . / :`` and
      spaces, with ``//``, or longer than 250 characters) is made valid and
      ends with ``-`` and 8 hexadecimal digits hashed from the original
      name, so that two targets never share a curve (``valid_soil%_rmse``
      becomes ``valid_soil__rmse-<hash>``);
    - at the end, with ``log_model=True``, the artifacts
      ``model/module_state_dict.pt`` (the module's ``state_dict``, saved with
      :func:`torch.save`) and ``model/history.json``; then the run is
      marked ``FINISHED``.

    A fit that raises ends its run ``FAILED`` (``KILLED`` after Ctrl-C),
    without the network, and the error goes on.

    Requires MLflow (``pip install "skestimators[tracking]"`` installs
    ``mlflow-skinny``), imported when a fit starts.

    Parameters
    ----------
    tracking_uri : str or None, default=None
        The tracking store: a database URL such as ``"sqlite:///mlflow.db"``
        (its folder is created when missing) or a server
        (``"http://localhost:5000"``). None uses MLflow's default:
        ``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///mlflow.db`` in the
        working directory. MLflow 3 refuses ``file:`` folder stores unless
        the environment variable ``MLFLOW_ALLOW_FILE_STORE`` is ``true``.
        A server whose port does not answer within 10 s fails the fit at
        its start with a ``ConnectionError``, not after MLflow's minutes of
        retries (a server reached through a proxy is left to MLflow).
    experiment_name : str, default="skestimators"
        Experiment of the runs, created when it does not exist.
    run_name : str or None, default=None
        Name of the runs; None uses the estimator's class name.
    parent_run_id : str or None, default=None
        Nest the runs under this run (tag ``mlflow.parentRunId``, which the
        MLflow UI and ``search_runs`` read). None nests them under the run
        active in this thread (``mlflow.active_run()``), if any, or, for the
        folds a search trains in threads, in the thread that started it.
    tags : dict of str to str or None, default=None
        Tags of every run.
    log_model : bool, default=True
        Log the fitted network's weights and history as artifacts.
    artifact_location : str or None, default=None
        Artifact folder of the experiment when this logger creates it. None
        uses a folder ``mlartifacts`` beside the database file of a
        ``sqlite:///`` store, and MLflow's default for other stores.

    Attributes
    ----------
    run_id_ : str
        The id of the last fit's run.
    experiment_id_ : str
        The id of its experiment.
    client_ : mlflow.tracking.MlflowClient
        The client, during a fit only.

    See Also
    --------
    TensorBoardLogger : Learning curves as TensorBoard event files.
    WandbLogger : Runs in Weights & Biases, offline by default.
    skestimators.model_selection.compare_variants : With ``tracking``, one
        parent run and a nested run per fit.

    Examples
    --------
    >>> import tempfile
    >>> from skestimators.tracking import MLflowLogger
    >>> store = f"sqlite:///{tempfile.mkdtemp()}/mlflow.db"
    >>> logger = MLflowLogger(store, experiment_name="soil-carbon")
    >>> logger  # doctest: +ELLIPSIS
    MLflowLogger(tracking_uri='sqlite:///.../mlflow.db', experiment_name='soil-carbon')

    Every ``fit`` of a network holding the logger is one run, which MLflow's
    client reads back:

    >>> from mlflow.tracking import MlflowClient  # doctest: +SKIP
    >>> from sklearn.datasets import make_regression
    >>> from skestimators import NetRegressor
    >>> X, y = make_regression(100, 4, random_state=0)
    >>> model = NetRegressor(max_epochs=3, callbacks=[("mlflow", logger)])
    >>> model.fit(X, y)  # doctest: +SKIP
    >>> client = MlflowClient(store)  # doctest: +SKIP
    >>> curve = client.get_metric_history(  # doctest: +SKIP
    ...     logger.run_id_, "valid_loss"
    ... )
    >>> [m.step for m in curve]  # doctest: +SKIP
    [1, 2, 3]
    """

    _handles = ("client_",)
    _parameter_constraints: dict = {
        "tracking_uri": [str, None],
        "experiment_name": [str],
        "run_name": [str, None],
        "parent_run_id": [str, None],
        "tags": [dict, None],
        "log_model": ["boolean"],
        "artifact_location": [str, os.PathLike, None],
    }

    def __init__(
        self,
        tracking_uri=None,
        *,
        experiment_name="skestimators",
        run_name=None,
        parent_run_id=None,
        tags=None,
        log_model=True,
        artifact_location=None,
    ):
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.run_name = run_name
        self.parent_run_id = parent_run_id
        self.tags = tags
        self.log_model = log_model
        self.artifact_location = artifact_location

    def _start_run(self, name, params):
        client = make_client(self.tracking_uri)
        experiment_id, run_id = start_run(
            client, self, self.run_name or name, {"estimator": name}
        )
        # The handle is set once the run exists: with it set and run_id_ still
        # the previous run's, a failed start made the next fit end that run.
        self.client_, self.experiment_id_, self.run_id_ = client, experiment_id, run_id
        log_params(client, run_id, params)

    def _log_epoch(self, step, metrics):
        log_metrics(self.client_, self.run_id_, metrics, step)

    def _log_epochs(self, epochs):
        # The epochs before a resume: a few calls, not one per epoch.
        log_metrics(self.client_, self.run_id_, epochs=epochs)

    def _end_run(self, net):
        if self.log_model:
            with model_files(net) as folder:
                self.client_.log_artifacts(self.run_id_, folder, "model")
        self.client_.set_terminated(self.run_id_, "FINISHED")

    def _abandon_run(self, killed=False):
        self.client_.set_terminated(self.run_id_, "KILLED" if killed else "FAILED")

    def _tag(self, tags):
        for key, value in tags.items():
            self.client_.set_tag(self.run_id_, key, str(value))

    def _supersede(self, previous):
        super()._supersede(previous)
        try:
            run = self.client_.get_run(previous)
        except Exception:  # deleted, or in another store: nothing to end
            return
        if run.info.status == "RUNNING":  # its process was killed
            self.client_.set_terminated(previous, "KILLED")


def make_client(tracking_uri):
    """``MlflowClient(tracking_uri)``, or an ImportError naming the extra.

    Processes that open a new SQLite store at the same moment (joblib
    workers of a cross-validation) would race to create and migrate its
    tables, and a migration cut short by another leaves the database
    unusable: the first opening of a SQLite store holds a lock on
    ``<database>.lock``. ``tracking_uri=None`` is MLflow's default store
    (``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``), locked alike.
    The database's folder is created when missing.
    """
    tracking = import_tracking("mlflow.tracking", PACKAGE)
    uri = tracking.get_tracking_uri() if tracking_uri is None else tracking_uri
    path = _sqlite_path(uri)
    if path is None:
        check_reachable(uri)
        return tracking.MlflowClient(uri)
    make_folder(Path(path).parent, "MLflowLogger", "tracking_uri", uri)
    from filelock import FileLock, Timeout

    try:
        with FileLock(f"{path}.lock", timeout=_LOCK_TIMEOUT):
            client = tracking.MlflowClient(uri)
            client.search_experiments(max_results=1)  # creates, migrates tables
            return client
    except Timeout:
        raise RuntimeError(
            f"Could not open the MLflow store {uri}: another process "
            f"has been creating its tables for {_LOCK_TIMEOUT} s."
        ) from None
    except Exception as exc:
        if "disk is full" in str(exc):
            raise OSError(
                errno.ENOSPC,
                f"The MLflow store {path} cannot be created: the disk is full "
                "(a store whose tables were cut short must then be deleted)",
            ) from None
        if "already exists" not in str(exc):
            raise
        # The tables' creation was cut short (a full disk, a killed process):
        # MLflow cannot finish it, and says only "table ... already exists".
        raise RuntimeError(
            f"The MLflow store {path} was left half-created (its tables' "
            "creation was cut short: a full disk, or a process killed while "
            "opening it first). Move it aside or delete it, and fit again."
        ) from None


_LOCK_TIMEOUT = 300

#: Seconds a tracking server's port has to answer before a fit starts.
CONNECT_TIMEOUT = 10


#: The URI schemes of MLflow's stores, and the default ports of those on a
#: server (whose port is tried before a fit starts).
_SCHEMES = (
    "file", "sqlite", "postgresql", "mysql", "mssql", "http", "https",
    "databricks", "databricks-uc", "uc",
)  # fmt: skip
_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "mysql": 3306, "mssql": 1433}


def check_reachable(uri):
    """Raise ``ConnectionError`` if the port of an HTTP(S) tracking server or
    of a database server does not answer within :data:`CONNECT_TIMEOUT`
    seconds, and ``ValueError`` for a scheme MLflow does not know.

    MLflow's client retries a failed request with growing pauses
    (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, 7 by default) before it gives up:
    minutes, during which the fit seems to hang. Other stores, and servers
    reached through a proxy (``HTTP(S)_PROXY`` or ``ALL_PROXY``, less
    ``NO_PROXY``), are left to MLflow.
    """
    parts = urllib.parse.urlsplit(uri)
    scheme = parts.scheme.lower()
    base = scheme.partition("+")[0]  # postgresql+psycopg: the database
    if len(scheme) > 1 and base not in _SCHEMES:  # one letter: a Windows drive
        raise ValueError(
            f"MLflowLogger: tracking_uri={uri!r} has the scheme {scheme!r}, "
            f"which MLflow does not know; use one of {', '.join(_SCHEMES)} "
            "(e.g. 'sqlite:///mlflow.db', 'http://host:5000')."
        )
    if base not in _PORTS or not parts.hostname:
        return  # files, and databases reached through a socket
    if base in ("http", "https") and _proxied(uri, scheme):
        return
    shown = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    what = "MLflow tracking server" if base in ("http", "https") else "database"
    try:
        port = parts.port
        if port is None:
            port = _PORTS[base]
        socket.create_connection(
            (parts.hostname, port), timeout=CONNECT_TIMEOUT
        ).close()
    except (OSError, ValueError) as exc:
        raise ConnectionError(
            f"MLflowLogger cannot reach the {what} {shown} "
            f"({type(exc).__name__}: {exc}). Start the server, or correct "
            "tracking_uri (or MLFLOW_TRACKING_URI)."
        ) from None


def _proxied(uri, scheme) -> bool:
    """Whether MLflow's HTTP client (requests) would reach ``uri`` through a
    proxy (``HTTP(S)_PROXY``, ``ALL_PROXY``, less ``NO_PROXY``)."""
    try:
        from requests.utils import get_environ_proxies
    except ImportError:  # pragma: no cover - MLflow installs requests
        proxies = urllib.request.getproxies()
        host = urllib.parse.urlsplit(uri).hostname
        return bool(proxies.get(scheme) or proxies.get("all")) and not (
            urllib.request.proxy_bypass(host)
        )
    proxies = get_environ_proxies(uri)
    return bool(proxies.get(scheme) or proxies.get("all"))


def _sqlite_path(tracking_uri):
    """The database file of a ``sqlite:///`` URI (None otherwise, or in memory)."""
    match = re.fullmatch(r"sqlite:///([^?]+)(\?.*)?", tracking_uri or "")
    if match is None or match.group(1) == ":memory:":
        return None
    return match.group(1)


def default_artifact_location(tracking_uri):
    """``<folder of the database>/mlartifacts`` for a ``sqlite:///`` store."""
    path = _sqlite_path(tracking_uri)
    if path is None:
        return None
    return (Path(path).resolve().parent / "mlartifacts").as_uri()


def experiment_id(client, name, artifact_location=None) -> str:
    """The id of experiment ``name``, created when it does not exist."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = artifact_location or default_artifact_location(client.tracking_uri)
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:
        # Another process may have created it since: use that one.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


#: The MLflow run active where a search started, for the runs of the fits
#: it runs in threads of its own (MLflow's active run is per thread).
_CALLER_RUN = contextvars.ContextVar("skestimators_caller_run", default=None)


def active_run_id():
    """The id of the MLflow run active in this thread (or inherited by it
    through :func:`nested_under`), None if none or MLflow is not loaded."""
    mlflow = sys.modules.get("mlflow")
    active = None if mlflow is None else mlflow.active_run()
    return _CALLER_RUN.get() if active is None else active.info.run_id


@contextlib.contextmanager
def nested_under(run_id):
    """Nest the runs started in this thread under ``run_id`` (when no run is
    active in it): a search's fold threads inherit the caller's run."""
    token = _CALLER_RUN.set(run_id)
    try:
        yield
    finally:
        _CALLER_RUN.reset(token)


def start_run(client, logger, run_name, tags) -> tuple[str, str]:
    """Create a run with ``logger``'s settings; return ``(experiment_id, run_id)``.

    The run is nested under ``logger.parent_run_id`` or, when that is None,
    under the run active in this thread (``mlflow.active_run()``), or that
    active where the search running this fit in a thread started.
    """
    parent = logger.parent_run_id
    if parent is None:
        import_tracking("mlflow", PACKAGE)
        parent = active_run_id()
    all_tags = {**(logger.tags or {}), **tags}
    if parent is not None:
        all_tags[PARENT_TAG] = parent
    experiment = experiment_id(client, logger.experiment_name, logger.artifact_location)
    run = client.create_run(
        experiment,
        run_name=run_name,
        tags={str(k): str(v) for k, v in all_tags.items()},
    )
    return experiment, run.info.run_id


def log_params(client, run_id, params):
    """Log ``params`` (values as strings), at most 100 per call."""
    entities = import_tracking("mlflow.entities", PACKAGE)
    items = [entities.Param(safe_key(k), str(v)) for k, v in params.items()]
    for start in range(0, len(items), _BATCH):
        client.log_batch(run_id, params=items[start : start + _BATCH])


def log_metrics(client, run_id, metrics=None, step=None, *, epochs=None):
    """Log ``{key: value}`` at ``step`` in one call (one transaction), or the
    ``[(step, metrics), ...]`` of several ``epochs`` in as few as can be."""
    entities = import_tracking("mlflow.entities", PACKAGE)
    now = int(time.time() * 1000)
    epochs = [(step, metrics)] if epochs is None else epochs
    items = [
        entities.Metric(safe_key(k), float(v), now, int(step))
        for step, metrics in epochs
        for k, v in metrics.items()
    ]
    for start in range(0, len(items), 10 * _BATCH):
        client.log_batch(run_id, metrics=items[start : start + 10 * _BATCH])


def safe_key(key) -> str:
    """``key`` as a parameter or metric name MLflow accepts.

    A valid name is kept. Otherwise the characters MLflow refuses become
    ``_``, the name is cleared of what MLflow would read as another path
    (empty, ``.`` and ``..`` parts, a leading ``/`` or ``..``), cut to fit
    :data:`MAX_KEY_LENGTH`, and ends with ``-`` and 8 hexadecimal digits of a
    hash of ``key``: two keys whose valid forms are alike (``soil%`` and
    ``soil#``) keep names of their own, the same in every process.
    """
    key = str(key)
    name = _plain_path(_NOT_IN_NAME.sub("_", key))
    if name and name == key and len(key) <= MAX_KEY_LENGTH:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    name = _plain_path(name[: MAX_KEY_LENGTH - len(digest) - 1])
    return f"{name}-{digest}" if name else digest


def _plain_path(name) -> str:
    """``name`` without the parts that make MLflow read it as another path."""
    name = "/".join(part for part in name.split("/") if part not in ("", ".", ".."))
    while name.startswith(".."):  # "...x" would be read as a parent folder
        name = name.lstrip(".").lstrip("/")
    return name


def end_children(client, experiment, parent_run_id, status="KILLED", failed=()):
    """Mark the runs nested under ``parent_run_id`` that are still running:
    ``FAILED`` those named in ``failed`` (fits known to have raised), the
    others ``status``."""
    query = f"tags.`{PARENT_TAG}` = '{parent_run_id}' and attributes.status = 'RUNNING'"
    token = None
    while True:
        page = client.search_runs([experiment], query, page_token=token)
        for run in page:
            ended = "FAILED" if run.info.run_name in failed else status
            client.set_terminated(run.info.run_id, ended)
        token = page.token
        if not token:
            return
