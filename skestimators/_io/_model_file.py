"""Save and load fitted models: a skops file or a pickle, plus a JSON sidecar.

``save(model, "model.skops")`` writes ``model.skops`` and
``model.skops.json``. The model file is in the safe format (skops: loading
rebuilds only trusted types) when the model can be stored so, else a joblib
pickle (see ``save``'s ``format``). The sidecar records what is needed to
trust and use the file later: how it was serialized, its SHA-256, the
versions it was made with, the input the model expects, where it was
trained, and optionally a fingerprint of the training data and
cross-validation scores. ``load`` reads the file once and checks the hash of
exactly the bytes it then loads.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import numbers
import os
import sys
import warnings
from pathlib import Path

from sklearn.utils.validation import check_is_fitted

from .._stack import caller_stacklevel
from ._atomic import (
    folder_lock,
    remove_stale_temporaries,
    replace_together,
    sync_file,
    sync_folder,
    temporary_name,
)
from ._errors import (
    ModelFileError,
    ModelFileNotFoundError,
    ModelVersionWarning,
    UntrustedTypeError,
)
from ._layout import data_fingerprint, final_estimator, input_layout
from ._paths import file_sha256, sidecar_path
from ._pickle import (
    is_safe_name,
    main_references,
    pickle_name,
    unpickle,
    write_pickle,
)
from ._safe import PICKLE, SAFE, check_trusted, choose_format, load_safe
from ._sidecar import _cv_from_json, _cv_summary, _devices, _targets, versions

__all__ = [
    "ModelFileError",
    "ModelFileNotFoundError",
    "ModelVersionWarning",
    "UntrustedTypeError",
    "load",
    "read_metadata",
    "save",
]

FORMAT = "skestimators-model/1"
_CHECKED_VERSIONS = ("skestimators", "torch", "sklearn")


def _read_bytes(path: Path) -> bytes:
    """The whole content of a model file, read once; refused when empty."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"Cannot read the model file {path}: {exc}") from exc
    if not data:
        raise ModelFileError(
            f"The model file {path} is empty (0 bytes): it was not written "
            "completely, or was truncated. Save the model again."
        )
    return data


def _check_saveable(estimator) -> None:
    """Refuse anything but a fitted estimator, before a byte is written."""
    if isinstance(estimator, type) or not (
        hasattr(estimator, "fit") and hasattr(estimator, "get_params")
    ):
        raise ModelFileError(
            "skestimators.save expects a fitted scikit-learn estimator or "
            f"pipeline, got {type(estimator).__name__}."
        )
    check_is_fitted(estimator)


def _training_fingerprint(training_data):
    if training_data is None:
        return None, None
    if not isinstance(training_data, (tuple, list)) or not 1 <= len(training_data) <= 2:
        raise ModelFileError("training_data must be a tuple (X, y) or (X,).")
    X = training_data[0]
    y = training_data[1] if len(training_data) == 2 else None
    return X, data_fingerprint(X, y)


def _cv_scores_summary(cv_scores):
    if cv_scores is None:
        return None
    try:
        return _cv_summary(cv_scores)
    except ValueError as exc:
        raise ModelFileError(str(exc)) from exc


def save(
    estimator,
    path,
    *,
    format: str = "auto",
    cv_scores=None,
    training_data=None,
    crop="unknown",
) -> Path:
    """Save a fitted model, in the safe format or as a pickle, with a JSON sidecar.

    The safe format is a skops file, with the weights of any torch network
    as safetensors entries: loading it rebuilds only trusted types and runs
    no code from the file. A pickle (joblib) can hold anything, but loading
    it runs whatever code its author chose. The model file and the sidecar
    ``<path>.json`` (for a file name too long to take ``.json``, over 250
    bytes, that name cut and followed by ``~`` and 8 hex digits of its hash)
    are written to temporary names, flushed to the disk and
    renamed into place, the sidecar last, so that a failure (or a power
    cut) never leaves a partial model or a model without its sidecar, and
    a save that fails leaves the previous model and sidecar in place (where
    the file system has hard links); two
    saves to the same path at the same moment leave one model with its own
    sidecar, and temporary files of saves killed on this machine are removed
    by the next save. Nothing is written unless ``estimator`` is a fitted
    estimator. The sidecar holds the
    format, the serialization (``"skops"`` or ``"pickle"``), the SHA-256
    and size of the model file, the versions of skestimators, torch,
    scikit-learn, NumPy and Python, the creation time (UTC), the device(s)
    the networks were on, the input the model expects (names, per-sample
    shapes, dtypes and DataFrame columns, from ``training_data`` or read
    from the fitted model: its ``input_shape_``/``input_columns_``/
    ``feature_names_in_``, or those of the first Pipeline step that has
    them, else the final network), its classes or target names, and, when
    given, a fingerprint of the training data and the cross-validation
    scores.

    A model trained on a GPU loads and predicts on a CPU-only machine.

    Parameters
    ----------
    estimator : estimator
        A fitted estimator or Pipeline.
    path : str or path-like
        The model file to write (``.skops`` or ``.joblib`` by convention);
        its folder must exist. A name ending in ``.skops`` is kept for the
        safe format: :func:`load` never unpickles such a file, so a pickle
        is refused under it.
    format : {"auto", "safe", "pickle"}, default="auto"
        ``"safe"``: a skops file, or a :class:`ModelFileError` when the
        model cannot be stored so (skops or safetensors is not installed,
        or skops cannot store one of its objects); types
        that are not trusted by default are then named by :func:`load`.
        ``"pickle"``: a joblib pickle. ``"auto"``: the safe format when the
        model can be stored in it and loaded back without widening the
        trusted types, else a pickle with a warning saying why.
    cv_scores : array-like or dict, default=None
        Cross-validation scores: an array, or the dict returned by
        :func:`sklearn.model_selection.cross_validate`; stored with their
        mean and standard deviation. Of a dict, the entries that are numbers
        are kept (``test_*``, ``train_*``, ``fit_time``, ``score_time``),
        the others dropped (``estimator``, ``indices``). A NaN score (a fold
        that failed) is stored as null, which :func:`read_metadata` reads
        back as NaN.
    training_data : tuple (X, y) or (X,), default=None
        The training data. Its SHA-256 fingerprint and number of samples are
        stored (not the data), and ``X`` defines the expected input exactly.
    crop : int, None or "unknown", default="unknown"
        The centre crop, in pixels, that the training images were read with
        (the ``crop`` of :func:`~skestimators.datasets.load_galaxy_zoo` or
        :func:`~skestimators.datasets.load_image_folder`; None: whole
        images). Stored in the sidecar: ``skestimators score`` reads image
        folders with it. ``"unknown"`` stores nothing.

    Returns
    -------
    path : pathlib.Path
        The model file written.

    Raises
    ------
    ModelFileError
        If ``estimator`` is not an estimator, ``format``, ``cv_scores`` or
        ``training_data`` is invalid, the model cannot be serialized (or
        would be a pickle named ``*.skops``), or the files cannot be written
        (:class:`~skestimators.ModelFileNotFoundError` when the folder does
        not exist).
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.

    Warns
    -----
    UserWarning
        If ``format="auto"`` falls back to a pickle, saying why.
    UserWarning
        If a pickled model references classes or functions defined in ``__main__``
        (a script or notebook): another process cannot unpickle them. Define
        them in an importable module.

    See Also
    --------
    load : Verify and load a saved model.

    Notes
    -----
    In a data-parallel job (``torchrun``), only process 0 writes; the other
    processes, whose fitted models are identical, return ``path`` at once.

    A pickle can execute arbitrary code when loaded: load only files from
    sources you trust. A network loaded from the safe format keeps its
    weights and its optimizer's state, and continues training exactly; the
    gradient scaler of mixed precision and the fitted state of your own
    callbacks are kept only by a pickle. The sidecar's hash detects corruption
    and accidental changes; it is no signature, since whoever can replace
    the model file can replace the sidecar too.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> import skestimators
    >>> X, y = np.arange(8.0).reshape(4, 2), np.arange(4.0)
    >>> model = LinearRegression().fit(X, y)
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> path = skestimators.save(model, folder / "lr.skops", training_data=(X, y))
    >>> sorted(p.name for p in folder.iterdir())
    ['lr.skops', 'lr.skops.json']
    >>> skestimators.read_metadata(path)["serialization"]
    'skops'
    >>> skestimators.load(path).predict(X[:2]).round(6).tolist()
    [0.0, 1.0]
    """
    path = Path(os.fspath(path))

    def write():
        _check_destination(estimator, path, format)
        return _write(estimator, path, format, training_data, cv_scores, crop)

    if "torch" in sys.modules:  # a model file of scikit-learn alone needs no torch
        from .._engine import on_main_process

        # A data-parallel job: process 0 checks and writes the (identical)
        # model; the others return once it exists, or raise its error.
        key = f"save:{os.path.abspath(path)}"
        return on_main_process(write, path, key=key, failure=ModelFileError)
    return write()


def _check_destination(estimator, path, format):
    """Refuse what cannot be saved, or saved there, before any work."""
    _check_saveable(estimator)
    if format not in ("auto", "safe", "pickle"):
        raise ModelFileError(
            f"format must be 'auto', 'safe' or 'pickle', got {format!r}."
        )
    if format == PICKLE and is_safe_name(path):
        raise ModelFileError(
            f"A pickle cannot be saved as {path.name}: a '.skops' file is never "
            "unpickled by load. Save it under another name (e.g. "
            f"{pickle_name(path)})."
        )
    if not path.parent.is_dir():
        raise ModelFileNotFoundError(f"Folder {path.parent} does not exist.")
    owner = path.with_name(path.name.removesuffix(".json"))
    if owner != path and owner.is_file() and sidecar_path(owner) == path:
        raise ModelFileError(
            f"{path.name} is the sidecar of {owner.name}: saving a model there "
            f"would leave {owner.name} without one. Choose another name."
        )


def _write(estimator, path, format, training_data, cv_scores, crop):
    """Check ``training_data`` and ``crop``, then write the model and its
    sidecar atomically (:func:`save`'s work in the process that writes)."""
    X, fingerprint = _training_fingerprint(training_data)
    if X is not None:
        try:  # before anything is written
            input_layout(estimator, X)
        except ValueError as exc:
            raise ModelFileError(str(exc)) from None
    cv_summary = _cv_scores_summary(cv_scores)
    if crop != "unknown" and not (
        crop is None or (isinstance(crop, numbers.Integral) and crop > 0)
    ):
        raise ModelFileError(
            f"crop must be a positive number of pixels, None (whole images) or "
            f"'unknown', got {crop!r}."
        )
    serialization, safe_bytes = choose_format(
        estimator,
        format,
        ModelFileError,
        pickle_name=pickle_name(path) if is_safe_name(path) else None,
    )
    if serialization == "pickle":
        main_refs = main_references(estimator)
        if main_refs:
            warnings.warn(
                f"The model references {main_refs} defined in __main__ (a script "
                "or notebook); it will only load in a process that defines them "
                "too. Move them to an importable module.",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
    side = sidecar_path(path)
    tmp_model, tmp_side = temporary_name(path), temporary_name(side)
    try:
        if safe_bytes is not None:
            tmp_model.write_bytes(safe_bytes)
        else:
            write_pickle(estimator, tmp_model, ModelFileError)
        devices = _devices(estimator)
        metadata = {
            "format": FORMAT,
            "serialization": serialization,
            "file": path.name,
            "sha256": file_sha256(tmp_model),
            "size_bytes": tmp_model.stat().st_size,
            "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"
            ),
            "estimator": _qualname(estimator),
            "final_estimator": _qualname(final_estimator(estimator)),
            "versions": versions(),
            "device": devices[0] if len(devices) == 1 else (devices or None),
            "input": input_layout(estimator, X),
            "targets": _targets(estimator),
            "training_data": fingerprint,
            "cv_scores": cv_summary,
        }
        if crop != "unknown":
            metadata["crop"] = None if crop is None else int(crop)
        tmp_side.write_text(json.dumps(metadata, indent=2, default=str) + "\n")
        sync_file(tmp_model)
        sync_file(tmp_side)
        with folder_lock(path.parent):
            # The model first, the sidecar last: a crash in between leaves a
            # model whose hash does not match (or has no) sidecar, which load
            # refuses, and a failed sidecar rename puts the previous model
            # back; the lock keeps a concurrent save from interleaving.
            replace_together([(tmp_model, path), (tmp_side, side)])
            sync_folder(path.parent)
            remove_stale_temporaries(path)
            remove_stale_temporaries(side)
    except OSError as exc:
        raise ModelFileError(f"Cannot write the model {path}: {exc}") from exc
    finally:
        for tmp in (tmp_model, tmp_side):
            with contextlib.suppress(OSError):  # never hides the error above
                tmp.unlink(missing_ok=True)
    return path


def _qualname(obj) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def read_metadata(path) -> dict:
    """Read the sidecar of a saved model.

    Parameters
    ----------
    path : str or path-like
        The model file (not the sidecar).

    Returns
    -------
    metadata : dict
        The sidecar's content, see :func:`save`; cross-validation scores
        stored as null (folds that failed) are read as NaN.

    Raises
    ------
    ModelFileError
        If the sidecar is missing or is not valid JSON.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sklearn.dummy import DummyClassifier
    >>> import skestimators
    >>> from skestimators._io import read_metadata
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "dummy.joblib"
    >>> _ = skestimators.save(DummyClassifier().fit([[0], [1]], [0, 1]), path)
    >>> meta = read_metadata(path)
    >>> meta["format"], meta["targets"]["classes"]
    ('skestimators-model/1', [0, 1])
    """
    side = sidecar_path(path)
    if side.exists() and not side.is_file():
        raise ModelFileError(f"The sidecar {side} of the model {path} is not a file.")
    if not side.is_file():
        raise ModelFileError(
            f"The model {path} has no sidecar {side.name}: it was not written by "
            "skestimators.save, or the sidecar was not copied along with it. If "
            "you trust its source, load it with trust=True (skestimators score: "
            "--trust)."
        )
    try:
        metadata = json.loads(side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"The sidecar {side} is not valid JSON: {exc}") from exc
    except OSError as exc:
        raise ModelFileError(f"Cannot read the sidecar {side}: {exc}") from exc
    if not isinstance(metadata, dict) or "sha256" not in metadata:
        raise ModelFileError(f"The sidecar {side} has no 'sha256' entry.")
    if "cv_scores" in metadata:
        metadata["cv_scores"] = _cv_from_json(metadata["cv_scores"])
    return metadata


def load(path, *, trust: bool = False, trusted: list | None = None):
    """Load a model saved by :func:`save`, after checking its SHA-256.

    The file is read once: its hash must match the one in its sidecar
    ``<path>.json``, and exactly the bytes that were checked are loaded, so
    a file swapped on disk meanwhile is never loaded. The sidecar says how
    the model was stored. A model in the safe format (skops) is rebuilt only
    from trusted types, and is refused otherwise, naming the types; a pickle
    is unpickled, which runs any code its author chose. A file is never
    unpickled when it is a zip (as a skops file is) or its name ends in
    ``.skops``, whatever its sidecar says: whoever can replace a safe file
    and its sidecar cannot make ``load`` run their code. A pickle loads
    under another name (``save(..., format="pickle")`` refuses a ``.skops``
    one; ``.joblib`` by convention). A warning is given
    when the versions of skestimators, torch or scikit-learn differ from the
    ones the model was saved with (the model may still work; retrain or pin
    them to be sure). A model whose networks were on a GPU loads onto the
    CPU quietly when no GPU is available.

    Parameters
    ----------
    path : str or path-like
        The model file written by :func:`save`.
    trust : bool, default=False
        Load a model file that has no sidecar (a pickle written by
        ``joblib.dump``, or a file whose sidecar was lost). Its integrity and
        versions cannot be checked then; a skops file still goes through the
        safe loader, and a file named ``*.skops`` is still never unpickled.
        A sidecar that is present is always checked.
    trusted : list of str or type, default=None
        Types a safe-format file may contain besides the default-trusted
        ones (scikit-learn's estimators, NumPy, builtins and the estimators
        of skestimators): ``"module.Class"`` names as the error lists them,
        or the classes themselves; a list even for one type
        (``trusted=["module.Class"]``). Ignored for pickles.

    Returns
    -------
    estimator : estimator
        The fitted model.

    Raises
    ------
    ModelFileNotFoundError
        If ``path`` does not exist (a :class:`FileNotFoundError` too).
    UntrustedTypeError
        If a safe-format file holds a type that is not trusted.
    ModelFileError
        If the sidecar is missing (and ``trust`` is False), unreadable, or
        its hash does not match the file, if the file is empty or cannot be
        loaded, if it would have to be unpickled but is a zip or named
        ``*.skops``, or if ``trusted`` is not a list.

    Warns
    -----
    ModelVersionWarning
        If the package, torch or scikit-learn version differs.

    See Also
    --------
    save : Write a model and its sidecar.

    Notes
    -----
    Unpickling runs code chosen by whoever wrote the file. Load pickles only
    from sources you trust; the hash check guards against corruption and
    mix-ups, not against someone who can rewrite both files.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sklearn.dummy import DummyRegressor
    >>> import skestimators
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "dummy.skops"
    >>> _ = skestimators.save(DummyRegressor().fit([[0], [1]], [1.0, 3.0]), path)
    >>> skestimators.load(path).predict([[5]]).tolist()
    [2.0]
    >>> _ = path.write_bytes(path.read_bytes() + b"x")
    >>> skestimators.load(path)
    Traceback (most recent call last):
    ...
    skestimators._io._errors.ModelFileError: ... does not match ...
    """
    path = Path(os.fspath(path))
    trusted = check_trusted(trusted, ModelFileError)
    if not path.is_file():
        raise ModelFileNotFoundError(f"Model file {path} does not exist.")
    with folder_lock(path.parent, shared=True):  # no save renames meanwhile
        if not sidecar_path(path).exists() and trust:
            metadata, data = None, _read_bytes(path)
        else:
            metadata, data = read_metadata(path), _read_bytes(path)
    if metadata is None:
        if data[:4] == b"PK\x03\x04":  # a skops (zip) file: still the safe loader
            return load_safe(data, path, trusted, ModelFileError, UntrustedTypeError)
        return unpickle(data, path, ModelFileError)
    _check_digest(path, hashlib.sha256(data).hexdigest(), metadata)
    _check_format(path, metadata)
    check_versions(metadata, path)
    if "serialization" not in metadata:
        raise ModelFileError(
            f"The sidecar of {path} does not say how the model was stored (no "
            "'serialization' entry); refusing to guess. Save the model again."
        )
    serialization = metadata["serialization"]
    if serialization == SAFE:
        return load_safe(data, path, trusted, ModelFileError, UntrustedTypeError)
    if serialization != PICKLE:
        raise ModelFileError(
            f"The sidecar of {path} names an unknown serialization "
            f"{serialization!r}; a newer skestimators may read it."
        )
    return unpickle(data, path, ModelFileError)


def _check_format(path, metadata) -> None:
    """Refuse a sidecar of another layout than the one this package writes."""
    found = metadata.get("format")
    if found == FORMAT:
        return
    newer = isinstance(found, str) and found.startswith(FORMAT.rpartition("/")[0])
    raise ModelFileError(
        f"The sidecar of {path} describes a model file of format {found!r}; this "
        f"skestimators reads {FORMAT!r}"
        + (": it was written by a newer skestimators, upgrade it." if newer else ".")
    )


def _check_digest(path, actual: str, metadata) -> None:
    if actual != metadata["sha256"]:
        raise ModelFileError(
            f"The SHA-256 of {path} ({actual[:16]}...) does not match its sidecar "
            f"({str(metadata['sha256'])[:16]}...): the file was changed or "
            "corrupted after it was saved. Refusing to load it."
        )


def check_integrity(path, metadata) -> None:
    """Raise ModelFileError if the file's SHA-256 differs from the sidecar's."""
    _check_digest(path, file_sha256(path), metadata)


def check_versions(metadata, path="the model") -> None:
    """Warn about package, torch and scikit-learn versions differing from now.

    Raises ModelFileError if the sidecar's ``versions`` is not a mapping.
    """
    saved = metadata.get("versions") or {}
    if not isinstance(saved, dict):
        raise ModelFileError(
            f"The sidecar of {path} is damaged: its 'versions' entry is a "
            f"{type(saved).__name__}, not a mapping of library names to versions."
        )
    current = versions()
    differ = [
        f"{name} {saved[name]} (installed {current[name]})"
        for name in _CHECKED_VERSIONS
        if name in saved and saved[name] != current[name]
    ]
    if differ:
        warnings.warn(
            f"{path} was saved with {', '.join(differ)}; it may not load or "
            "predict identically.",
            ModelVersionWarning,
            stacklevel=3,
        )
