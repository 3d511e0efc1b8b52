"""Choosing the reader for the input paths and checking them against the model."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._io import walk_estimators
from ._csv import CsvReader
from ._folders import ExoplanetReader, ImageFolderReader
from ._readers import (
    IMAGE_SUFFIXES,
    RASTER_SUFFIXES,
    NpyReader,
    ParquetReader,
    ScoringInputError,
)

__all__ = [
    "check_layout",
    "check_output",
    "input_kind",
    "open_input",
    "text_columns",
]


def _refuse_raster_folder(folder: Path) -> None:
    """A folder of georeferenced GeoTIFFs is a stack of rasters, not images:
    say how to map it (the files, in time order) instead of reading it as
    images at the model's size."""
    tifs = sorted(p for p in folder.iterdir() if p.suffix.lower() in RASTER_SUFFIXES)
    if not tifs:
        return
    try:
        import rasterio
    except ImportError:  # not installed: no rasters to map anyway
        return
    try:
        with rasterio.open(tifs[0]) as src:
            georeferenced = src.crs is not None
    except Exception:  # not a GeoTIFF rasterio reads: the image reader says why
        return
    if georeferenced:
        raise ScoringInputError(
            f"{folder} holds georeferenced GeoTIFFs ({tifs[0].name}...), rasters "
            "rather than images: to map them, pass the files themselves, one per "
            f"time step in time order (e.g. {folder}/*.tif)."
        )


def input_kind(paths) -> str:
    """The format of ``paths``: npy, parquet, csv, raster, exoplanet or images."""
    if not paths:
        raise ScoringInputError("No input given.")
    kinds = set()
    for path in map(Path, paths):
        if not path.exists():
            raise ScoringInputError(f"Input {path} does not exist.")
        if path.is_dir():
            if (path / "spectra.npy").exists():
                kinds.add("exoplanet")
            elif any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
                _refuse_raster_folder(path)
                kinds.add("images")
            else:
                raise ScoringInputError(
                    f"Folder {path} is neither an exoplanet folder (spectra.npy, "
                    "auxiliary.csv) nor a folder of <id>.jpg images."
                )
            continue
        suffix = path.suffix.lower()
        kind = {".npy": "npy", ".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
        if suffix in RASTER_SUFFIXES:
            kinds.add("raster")
        elif suffix in kind:
            kinds.add(kind[suffix])
        else:
            raise ScoringInputError(
                f"Cannot tell the format of {path}: use .npy, .parquet, .csv, "
                ".tif, an exoplanet folder or a folder of .jpg images."
            )
    if len(kinds) != 1:
        raise ScoringInputError(f"The inputs mix formats: {sorted(kinds)}.")
    kind = kinds.pop()
    if kind in ("exoplanet", "images") and len(paths) > 1:
        raise ScoringInputError(f"Give one {kind} folder at a time.")
    return kind


def open_input(
    paths,
    *,
    expected=None,
    id_column=None,
    crop=207,
    whole_at_size=False,
    text_columns=(),
):
    """A reader for ``paths`` (all of one format), checked against ``expected``.

    Parameters
    ----------
    paths : sequence of str or path-like
        ``.npy``, ``.parquet`` or ``.csv`` files (several are read one after
        the other), or one exoplanet folder or image folder.
    expected : dict, default=None
        The model's input layout (see :func:`skestimators.save`).
    id_column : str, default=None
        Column of a table holding the row ids (not passed to the model).
        Default: a column named ``id`` if the table has one, else the row
        positions.
    crop : int or None, default=207
        Centre crop of images before resizing (image folders).
    whole_at_size : bool, default=False
        Read images already of the model's size whole (image folders).
    text_columns : collection of str, default=()
        Columns of a table that the model takes as text (see
        :func:`text_columns`); text in the other columns is read as NaN.

    Returns
    -------
    reader : object
        With ``n_rows``, ``layout``, ``paths``, ``id_name`` (the output's
        id column), ``id_source`` (where the ids come from;
        ``"row position"`` for inputs without ids), ``row_bytes`` and
        ``specs(chunk_rows)``.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> from skestimators.scoring._inputs import open_input
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(path, np.zeros((5, 4)))
    >>> reader = open_input([path])
    >>> reader.n_rows, [s.n_rows for s in reader.specs(2)], reader.id_source
    (5, [2, 2, 1], 'row position')
    """
    paths = [Path(os.fspath(p)) for p in paths]
    if not paths:
        raise ScoringInputError("No input given.")
    kind = input_kind(paths)
    if id_column is not None and kind not in ("parquet", "csv"):
        raise ScoringInputError("--id-column applies to Parquet and CSV inputs only.")
    if kind == "npy":
        reader = NpyReader(paths)
    elif kind == "parquet":
        reader = ParquetReader(
            paths, id_column=id_column, expected=expected, text_columns=text_columns
        )
    elif kind == "csv":
        reader = CsvReader(
            paths, id_column=id_column, expected=expected, text_columns=text_columns
        )
    elif kind == "exoplanet":
        reader = ExoplanetReader(paths[0])
    elif kind == "images":
        reader = ImageFolderReader(
            paths[0], expected=expected, crop=crop, whole_at_size=whole_at_size
        )
    else:
        raise ScoringInputError(
            "Raster inputs are scored by predict_raster, not read in rows."
        )
    check_layout(expected, reader.layout, ", ".join(map(str, paths)))
    return reader


def check_layout(expected, provided, source="the input") -> None:
    """Raise ScoringInputError if ``provided`` cannot feed a model expecting it.

    ``expected`` is a model's input layout. Input names and DataFrame columns
    must be present; per-row shapes must be equal when the expected layout is
    exact (describes the raw input).
    """
    if not expected:
        return
    if expected["kind"] != provided["kind"]:
        if expected["kind"] == "named":
            raise ScoringInputError(
                f"The model expects named inputs {list(expected['inputs'])} (a "
                f"MultiInput, e.g. an exoplanet folder); {source} holds one array."
            )
        raise ScoringInputError(
            f"The model expects one array; {source} holds named inputs "
            f"{list(provided['inputs'])}."
        )
    missing = [k for k in expected["inputs"] if k not in provided["inputs"]]  # few
    if missing:
        raise ScoringInputError(
            f"{source} lacks the input(s) {missing} the model expects "
            f"(it has {list(provided['inputs'])})."
        )
    for name, want in expected["inputs"].items():
        have = provided["inputs"][name]
        columns = want.get("columns")
        if columns and have.get("columns") is not None:
            present = set(have["columns"])
            absent = [c for c in columns if c not in present]
            if absent:
                raise ScoringInputError(
                    f"Input {name!r} of {source} lacks the column(s) {absent[:10]}."
                )
            continue
        shape = want.get("shape")
        if (
            expected.get("exact")
            and shape is not None
            and list(have["shape"]) != list(shape)
        ):
            what = "rows" if name == "X" else f"input {name!r} rows"
            raise ScoringInputError(
                f"{source} has {what} of shape {tuple(have['shape'])}, but the "
                f"model expects {tuple(shape)}."
            )


def check_output(output, files, inputs=()) -> None:
    """Refuse an output that would overwrite one of ``files`` or ``inputs``.

    ``output`` is the list of files a job writes (the output, its
    invalid-rows and ids files); none may be an input (or the model, in
    ``files``) or lie inside an input folder.
    """
    for target in map(Path, output):
        resolved = target.resolve()
        for source in map(Path, [*files, *inputs]):
            if source.is_dir():
                if resolved.is_relative_to(source.resolve()):
                    raise ScoringInputError(
                        f"The output {target} lies inside the input folder "
                        f"{source}; write it elsewhere."
                    )
            elif resolved == source.resolve() or (
                target.exists() and source.exists() and target.samefile(source)
            ):
                raise ScoringInputError(
                    f"The output {target} would overwrite the input {source}; "
                    "write it elsewhere."
                )


def _column_names(columns, names) -> list:
    """Names of the columns a fitted ColumnTransformer routes (names, indices,
    a mask or a slice of its ``feature_names_in_``)."""
    if isinstance(columns, str):
        return [columns]
    values = np.asarray(columns) if not isinstance(columns, slice) else None
    if values is not None and values.dtype.kind in "OUS":
        return [str(c) for c in values]
    if names is None:
        return []
    return [str(c) for c in np.asarray(names)[columns]]


def _text_categories(estimator) -> list | None:
    """Per input column, whether an encoder's categories are text (None for
    an estimator without ``categories_``)."""
    categories = getattr(estimator, "categories_", None)
    if not isinstance(categories, list):
        return None
    return [np.asarray(c).dtype.kind in "OUS" for c in categories]


def _takes_text(transformer) -> bool:
    """Whether a fitted transformer was fitted on text: encoders with text
    categories (OneHotEncoder, OrdinalEncoder...), text vectorizers."""
    if isinstance(transformer, str):  # "drop", "passthrough"
        return False
    for _, est in walk_estimators(transformer):
        if hasattr(est, "vocabulary_") or any(_text_categories(est) or ()):
            return True
    return False


def _raw_input_estimators(estimator):
    """Yield ``estimator`` and the estimators nested in it that see its raw
    input: its first step (a Pipeline), fitted estimator (a meta-estimator)
    or first member (an ensemble), then theirs, in that order."""
    while estimator is not None:
        yield estimator
        nested = walk_estimators(estimator)
        next(nested)  # the estimator itself
        estimator = next(nested, (None, None))[1]


def _encoded_text_columns(estimator) -> list:
    """Columns of the raw input that ``estimator``, which sees it, encodes as
    text: those of an encoder whose categories are text, every column of a
    text vectorizer; by ``feature_names_in_``."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return []
    names = [str(n) for n in names]
    text = _text_categories(estimator)
    if text is not None and len(text) == len(names):
        return [name for name, is_text in zip(names, text) if is_text]
    return names if hasattr(estimator, "vocabulary_") else []


def text_columns(estimator) -> frozenset:
    """Columns of a table that ``estimator`` takes as text.

    Those a ColumnTransformer of the model passes to a transformer fitted on
    text (a OneHotEncoder of words, a text vectorizer), and those that the
    estimator seeing the raw input (the model, the first step of a Pipeline)
    encodes as text when it is such a transformer itself. The reader keeps
    them as read; text in the other columns (numbers, to the model) is read
    as NaN, and the row is listed as invalid.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.compose import make_column_transformer
    >>> from sklearn.preprocessing import OneHotEncoder
    >>> from skestimators.scoring._inputs import text_columns
    >>> X = pd.DataFrame({"color": ["red", "blue"], "size": [1.0, 2.0]})
    >>> ct = make_column_transformer((OneHotEncoder(), ["color"]),
    ...                              remainder="passthrough").fit(X)
    >>> sorted(text_columns(ct))
    ['color']
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> X = pd.DataFrame({"color": ["red", "blue"], "size": [1, 2]})
    >>> pipe = make_pipeline(OneHotEncoder(), LogisticRegression()).fit(X, [0, 1])
    >>> sorted(text_columns(pipe))
    ['color']
    """
    found = set()
    for est in _raw_input_estimators(estimator):
        found.update(_encoded_text_columns(est))
    for _, est in walk_estimators(estimator):
        fitted = getattr(est, "transformers_", None)
        if not isinstance(fitted, list):
            continue
        names = getattr(est, "feature_names_in_", None)
        for _, transformer, columns in fitted:
            if _takes_text(transformer):
                found.update(_column_names(columns, names))
    return frozenset(found)
