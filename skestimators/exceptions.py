"""Errors and warnings raised by the network estimators.

Each inherits from the built-in class that code catching scikit-learn's
errors already expects (``ValueError``, ``ArithmeticError``, ``UserWarning``).
A training run that diverges but can fall back on the weights of its best
epoch warns with scikit-learn's
:class:`~sklearn.exceptions.ConvergenceWarning`.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "CheckpointWarning",
    "NonFinitePredictionError",
    "TrainingDivergedError",
]


class TrainingDivergedError(ArithmeticError):
    """The training loss became NaN or infinite and no good weights were kept.

    Training stops at the first batch whose loss is not finite. When a
    validation split with early stopping kept the weights of a best epoch,
    they are restored with a :class:`~sklearn.exceptions.ConvergenceWarning`
    instead of this error.

    Attributes
    ----------
    epoch : int
        Epoch (from 1) of the first non-finite loss.
    batch : int
        Batch (from 1) within that epoch.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from skestimators import NetRegressor
    >>> from skestimators.exceptions import TrainingDivergedError
    >>> X, y = make_regression(100, 4, random_state=0)
    >>> reg = NetRegressor(lr=1e6, optimizer="sgd", validation_fraction=None,
    ...                    random_state=0)
    >>> try:
    ...     reg.fit(X, y)
    ... except TrainingDivergedError as exc:
    ...     print(exc.epoch, exc.batch)
    1 3
    """

    def __init__(self, message, *, epoch, batch):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch


class NonFinitePredictionError(ValueError):
    """The network returned NaN or infinite values for some rows.

    Attributes
    ----------
    rows : numpy.ndarray of int
        Positions (from 0) of the rows whose prediction is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from skestimators import NetRegressor
    >>> from skestimators.exceptions import NonFinitePredictionError
    >>> rng = np.random.RandomState(0)
    >>> X, y = rng.rand(50, 3), rng.rand(50)
    >>> reg = NetRegressor(max_epochs=2, random_state=0).fit(X, y)
    >>> X_new = np.vstack([X[:2], np.full((1, 3), 3e38)])
    >>> try:
    ...     reg.predict(X_new)
    ... except NonFinitePredictionError as exc:
    ...     print(exc.rows)
    [2]
    """

    def __init__(self, message, *, rows):
        super().__init__(message)
        self.rows = rows


class CheckpointError(ValueError):
    """A training checkpoint cannot be used.

    Another estimator, configuration or data set wrote it, it cannot be read,
    or another fit holds its directory.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from skestimators import NetRegressor
    >>> from skestimators.exceptions import CheckpointError
    >>> rng = np.random.RandomState(0)
    >>> X, y = rng.rand(50, 3), rng.rand(50)
    >>> directory = tempfile.mkdtemp()
    >>> _ = NetRegressor(max_epochs=2, checkpoint=directory, random_state=0).fit(X, y)
    >>> try:
    ...     NetRegressor(max_epochs=2, lr=0.01, checkpoint=directory).fit(X, y)
    ... except CheckpointError as exc:
    ...     print("lr=0.01 (checkpoint: 0.001)" in str(exc))
    True
    """


class CheckpointWarning(UserWarning):
    """A checkpoint could not be written; training goes on.

    Raised as a warning when the disk is full or the directory is not
    writable: the previous checkpoint is kept whole (files are replaced
    atomically) and training continues, so nothing computed is lost.

    Examples
    --------
    >>> import warnings
    >>> from skestimators.exceptions import CheckpointWarning
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warnings.warn("disk full", CheckpointWarning)
    >>> caught[0].category.__name__
    'CheckpointWarning'
    """
