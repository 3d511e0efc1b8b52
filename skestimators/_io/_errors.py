"""The errors and warning of model files."""

from __future__ import annotations

__all__ = [
    "ModelFileError",
    "ModelFileNotFoundError",
    "ModelVersionWarning",
    "UntrustedTypeError",
]


class ModelFileError(ValueError):
    """A model file or its sidecar is missing, altered or unreadable.

    Raised by :func:`~skestimators.load` before anything is unpickled.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skestimators import ModelFileError, load
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.joblib"
    >>> _ = path.write_bytes(b"not a model, and no sidecar")
    >>> try:
    ...     load(path)
    ... except ModelFileError as exc:
    ...     print(type(exc).__name__)
    ModelFileError
    """


class ModelFileNotFoundError(ModelFileError, FileNotFoundError):
    """A model file, or the folder to save one in, does not exist.

    Both a :class:`~skestimators.ModelFileError` and a :class:`FileNotFoundError`.

    Examples
    --------
    >>> from skestimators import ModelFileNotFoundError, load
    >>> try:
    ...     load("no/such/model.joblib")
    ... except ModelFileNotFoundError as exc:
    ...     print(isinstance(exc, FileNotFoundError))
    True
    """


class UntrustedTypeError(ModelFileError):
    """A safe-format model file holds a type that is not trusted.

    Nothing from the file is loaded. Pass the types named in the message to
    ``load(..., trusted=[...])`` if you trust the file's source.

    Examples
    --------
    >>> from skestimators import ModelFileError, UntrustedTypeError
    >>> issubclass(UntrustedTypeError, ModelFileError)
    True
    """


class ModelVersionWarning(UserWarning):
    """A model was saved with other versions of the libraries than installed.

    Emitted by :func:`~skestimators.load`; turn it into an error to refuse such models.

    Examples
    --------
    >>> import warnings
    >>> from skestimators import ModelVersionWarning
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", ModelVersionWarning)
    ...     issubclass(ModelVersionWarning, UserWarning)
    True
    """
