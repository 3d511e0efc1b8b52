"""Readers that cut scoring inputs into chunks of rows, one format each.

A reader knows its number of rows and the layout it provides (input names,
per-row shapes, columns) without reading the data, and yields *chunk specs*:
small picklable objects whose ``load()`` returns one chunk. Specs of
random-access formats (``.npy``, exoplanet folders, image folders) hold only
a file and a row range, so a Dask worker reads the rows itself; specs of
streamed formats (Parquet, CSV) carry their rows.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import (
    is_numeric_dtype,
    is_object_dtype,
    is_string_dtype,
    pandas_dtype,
)

from ..datasets import _IMAGE_SUFFIXES

__all__ = ["Chunk", "NpyReader", "ParquetReader", "ScoringInputError"]

#: Target size of one chunk when ``chunk_rows`` is not given.
CHUNK_BYTES = 32 << 20
RASTER_SUFFIXES = (".tif", ".tiff")
#: The images load_image_folder reads, so that a model is scored on the
#: files it could be trained on.
IMAGE_SUFFIXES = _IMAGE_SUFFIXES
#: Id source of inputs that have no ids (their rows are numbered from 0).
ROW_POSITION = "row position"
#: Column taken as the row ids of a table when no id column is named.
ID_COLUMN = "id"


class ScoringInputError(ValueError):
    """An input file is missing, unreadable, or does not fit the model.

    Examples
    --------
    >>> from skestimators.scoring import ScoringInputError
    >>> issubclass(ScoringInputError, ValueError)  # caught by sklearn-style code
    True
    """


@dataclass
class Chunk:
    """Rows of one chunk: their ids, the model input, rows known to be bad."""

    ids: np.ndarray
    X: object
    bad: dict = field(default_factory=dict)  # position -> reason


def auto_chunk_rows(row_bytes: int) -> int:
    """Rows per chunk so that a chunk holds about ``CHUNK_BYTES``."""
    return int(min(1 << 16, max(1, CHUNK_BYTES // max(int(row_bytes), 1))))


# -- .npy -----------------------------------------------------------------------------
def _npy_header(path: Path):
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ScoringInputError(f"{path} is not a readable .npy file: {exc}") from exc
    if not isinstance(array, np.memmap):
        raise ScoringInputError(f"{path} is not a .npy array (an .npz archive?).")
    numeric = array.dtype.kind in "biuf"  # not dates, texts, records, complex
    if array.ndim < 1 or not numeric:
        raise ScoringInputError(
            f"{path} must hold a numeric array (booleans, integers or floats) "
            f"with a row axis; got shape {array.shape} and dtype {array.dtype}."
        )
    info = (array.offset, array.dtype.str, array.shape, bool(array.flags.f_contiguous))
    del array
    return info


@dataclass
class NpyRows:
    """Rows ``[start, stop)`` of a ``.npy`` file, read through a window mapping.

    Each read maps only the rows it needs and unmaps them afterwards, so the
    resident memory of a long scan stays at one chunk.
    """

    path: str
    offset: int
    dtype: str
    shape: tuple
    fortran: bool
    start: int
    stop: int

    def read(self) -> np.ndarray:
        dtype = np.dtype(self.dtype)
        n = self.stop - self.start
        row_shape = tuple(self.shape[1:])
        if n == 0:
            return np.empty((0, *row_shape), dtype)
        if self.fortran and len(self.shape) > 1:
            whole = np.load(self.path, mmap_mode="r")
            out = np.array(whole[self.start : self.stop])
            del whole
            return out
        row_items = math.prod(row_shape)
        window = np.memmap(
            self.path,
            dtype=dtype,
            mode="r",
            offset=self.offset + self.start * row_items * dtype.itemsize,
            shape=(n, *row_shape),
        )
        out = np.array(window)
        del window
        return out


@dataclass
class NpySpec:
    index: int
    rows: NpyRows
    first_id: int

    @property
    def n_rows(self):
        return self.rows.stop - self.rows.start

    def load(self) -> Chunk:
        return Chunk(
            np.arange(self.first_id, self.first_id + self.n_rows), self.rows.read()
        )


class NpyReader:
    """One or more ``.npy`` files of equal row shape, rows numbered in order."""

    id_name = ID_COLUMN
    id_source = ROW_POSITION
    rows_exact = True

    def __init__(self, paths):
        self.paths = [Path(p) for p in paths]
        self.headers = [_npy_header(p) for p in self.paths]
        shapes = {tuple(h[2][1:]) for h in self.headers}
        if len(shapes) > 1:
            raise ScoringInputError(
                f"The .npy inputs have different row shapes: {sorted(shapes)}."
            )
        self.row_shape = shapes.pop()
        self.n_rows = sum(h[2][0] for h in self.headers)
        itemsize = np.dtype(self.headers[0][1]).itemsize
        self.row_bytes = math.prod(self.row_shape) * itemsize
        self.layout = {
            "kind": "array",
            "inputs": {"X": {"shape": list(self.row_shape), "columns": None}},
        }

    def specs(self, chunk_rows):
        index, first = 0, 0
        for path, (offset, dtype, shape, fortran) in zip(self.paths, self.headers):
            for start in range(0, shape[0], chunk_rows):
                stop = min(start + chunk_rows, shape[0])
                # Absolute: a Dask worker reads it from its own directory.
                rows = NpyRows(
                    str(path.absolute()), offset, dtype, shape, fortran, start, stop
                )
                yield NpySpec(index, rows, first + start)
                index += 1
            first += shape[0]


# -- tables: Parquet and CSV ----------------------------------------------------------
@dataclass
class DataSpec:
    """A chunk whose rows were read by the driver."""

    index: int
    ids: np.ndarray
    X: object
    bad: dict = field(default_factory=dict)  # position -> reason

    @property
    def n_rows(self):
        return len(self.ids)

    def load(self) -> Chunk:
        return Chunk(self.ids, self.X, self.bad)


class _TableReader:
    """Shared by the table readers: the id column and the model's columns.

    The ids are the ``id_column`` named, else a column literally named
    ``id``, else the row positions (from 0, over all files in order). A named
    id column is never passed to the model; a detected ``id`` column is
    passed only when the model was trained on a column of that name.
    """

    id_name = ID_COLUMN
    rows_exact = True
    integer_ids = False

    def _setup(self, columns, id_column, expected, text_columns=()):
        columns = [str(c) for c in columns]
        wanted = _expected_columns(expected)
        wanted_set = set(wanted or ())
        if id_column is not None:
            if id_column not in columns:
                raise ScoringInputError(
                    f"--id-column {id_column!r} is not a column of {self.source}; "
                    f"its columns start {columns[:8]}."
                )
            features = [c for c in columns if c != id_column]
        elif ID_COLUMN in columns:
            id_column = ID_COLUMN
            features = [c for c in columns if c != id_column or c in wanted_set]
        else:
            features = columns
        self.id_column = id_column
        self.id_name = id_column or ID_COLUMN
        self.id_source = ROW_POSITION if id_column is None else f"column {id_column!r}"
        if wanted is not None:
            present = set(features)
            missing = [c for c in wanted if c not in present]
            if missing and id_column in missing and id_column in columns:
                raise ScoringInputError(
                    f"Column {id_column!r} is named as the id column "
                    "(--id-column, id_column=), which is not passed to the model, "
                    "but the model was trained on it: name another id column, or "
                    "none (the rows are then numbered)."
                )
            if missing:
                raise ScoringInputError(
                    f"{self.source} lacks {len(missing)} column(s) the model was "
                    f"trained on: {_few(missing)}."
                )
            features = list(wanted)
        self.features = features
        self.numeric_columns = _numeric_columns(expected, features, text_columns)
        self.layout = {
            "kind": "array",
            "inputs": {"X": {"shape": [len(features)], "columns": features}},
        }

    def _check_same_columns(self, kind: str, headers) -> None:
        """Refuse files whose columns are not those of the first, in any order.

        The columns are read by name, so their order may differ from file to
        file (``df.set_index("id").to_parquet()`` stores the id last). The
        error names the columns that differ.
        """
        for path, header in zip(self.paths, headers):
            repeated = sorted(c for c, n in Counter(header).items() if n > 1)
            if repeated:
                raise ScoringInputError(
                    f"{path} has more than one column named {_few(repeated)}: "
                    "a column is read by its name."
                )
        first = headers[0]
        for path, header in zip(self.paths[1:], headers[1:]):
            if set(header) == set(first):  # no name repeats (above)
                continue
            lacks = [c for c in first if c not in header]
            extra = [c for c in header if c not in first]
            parts = [f"lacks {_few(lacks)}"] if lacks else []
            parts += [f"has {_few(extra)} in addition"] if extra else []
            raise ScoringInputError(
                f"The {kind} inputs have different columns: compared with "
                f"{self.paths[0]}, {path} {' and '.join(parts)}."
            )

    @property
    def columns(self):
        """The columns to read: the model's, then the id column (once)."""
        extra = [self.id_column] if self.id_column not in (None, *self.features) else []
        return self.features + extra

    def _spec(self, index: int, frame: pd.DataFrame, first: int, ids=None) -> DataSpec:
        """Chunk ``index``: the rows of ``frame``, the first being row ``first``.

        ``ids``: the id column as read, when the reader has them apart from
        ``frame``. Text in a column the model takes as numbers (see
        :func:`_numeric_columns`) becomes NaN and its row is listed as
        invalid, instead of failing the job.
        """
        if self.id_column is None:
            ids = np.arange(first, first + len(frame))
        elif ids is None:
            ids = frame[self.id_column].to_numpy()
            if self.integer_ids:
                ids = ids.astype(np.int64)
        X = frame[self.features].reset_index(drop=True)
        bad = {}
        texts = [
            c
            for c in X.columns
            if c in self.numeric_columns
            and (
                is_object_dtype(X[c].dtype)
                or is_string_dtype(X[c].dtype)
                or isinstance(X[c].dtype, pd.CategoricalDtype)  # Parquet dictionaries
            )
        ]
        for c in texts:
            values = X[c]
            if isinstance(values.dtype, pd.CategoricalDtype):  # values, not codes
                values = values.astype(object)
            numbers = pd.to_numeric(values, errors="coerce")
            for position in np.flatnonzero(numbers.isna() & X[c].notna()):
                bad.setdefault(int(position), f"text in numeric column {c!r}")
            X[c] = numbers
        return DataSpec(index, ids, X, bad)


def _few(names, limit=10) -> str:
    """``names`` as a list, cut after ``limit`` of them."""
    return f"{names[:limit]}{' ...' if len(names) > limit else ''}"


#: Columns pandas writes for an unnamed index of a DataFrame saved to Parquet.
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")


def _to_frame(table) -> pd.DataFrame:
    """``table`` as a DataFrame of its columns: a pandas index saved with it
    (``df.set_index("id").to_parquet()``) stays a column."""
    return table.to_pandas(ignore_metadata=True)


def _arrow_ids(column) -> np.ndarray:
    """An Arrow id column as NumPy, every id as stored.

    Through pandas, integers with a null became floats (``2.0``, and ids
    above 2**53 rounded into one another), and a chunk of null text ids a
    float column. Without nulls the values convert exactly; with nulls they
    are Python objects (``None`` for a missing id), which Arrow writes back
    in the column's own type.
    """
    import pyarrow as pa

    zoned = pa.types.is_timestamp(column.type) and column.type.tz is not None
    if column.null_count == 0 and not zoned:  # NumPy would drop the time zone
        return column.to_numpy(zero_copy_only=False)
    return np.array(column.to_pylist(), dtype=object)


def _batches(path, file, chunk_rows, columns):
    """The record batches of a Parquet file; a damaged page is named with
    its file (pyarrow's error names none)."""
    batches = file.iter_batches(batch_size=chunk_rows, columns=columns)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as exc:  # pyarrow raises OSError, ArrowException...
            raise ScoringInputError(
                f"{path} cannot be read (a damaged Parquet page?): {exc}"
            ) from exc
        yield batch


class ParquetReader(_TableReader):
    """Parquet files, read in record batches regrouped into chunks."""

    def __init__(self, paths, *, id_column=None, expected=None, text_columns=()):
        import pyarrow.parquet as pq

        self.paths = [Path(p) for p in paths]
        self.source = ", ".join(p.name for p in self.paths)
        self.files = []
        for path in self.paths:
            try:
                self.files.append(pq.ParquetFile(path))
            except Exception as exc:  # pyarrow raises several error types
                raise ScoringInputError(
                    f"{path} is not a readable Parquet file: {exc}"
                ) from exc
        # An unnamed pandas index is not a column of the data (not read).
        headers = [
            [n for n in f.schema_arrow.names if not _PANDAS_INDEX.fullmatch(n)]
            for f in self.files
        ]
        self._check_same_columns("Parquet", headers)
        self.n_rows = sum(f.metadata.num_rows for f in self.files)
        self._setup(headers[0], id_column, expected, text_columns)
        self.row_bytes = 8 * (len(self.features) + 1)
        self.schema = self._common_schema()

    def _common_schema(self):
        """One schema of the columns read, for every file: a column stored
        as integers in one file and as floats in another is read as floats
        (else chunks spanning both files failed, and others did not)."""
        import pyarrow as pa

        fields = []
        for column in self.columns:
            own = [f.schema_arrow.field(column) for f in self.files]
            try:
                unified = pa.unify_schemas(
                    [pa.schema([f]) for f in own], promote_options="permissive"
                )
            except pa.ArrowException:
                types = {}
                for path, f in zip(self.paths, own):
                    types.setdefault(str(f.type), []).append(path.name)
                shown = "; ".join(f"{t} in {_few(n)}" for t, n in types.items())
                raise ScoringInputError(
                    f"Column {column!r} has types that cannot be read as one "
                    f"across the Parquet inputs: {shown}. Write it with one type "
                    "in every file."
                ) from None
            fields.append(unified.field(column))
        return pa.schema(fields)

    def specs(self, chunk_rows):
        import pyarrow as pa

        columns = self.columns
        index, first, pending, n_pending = 0, 0, [], 0

        def flush(n):
            table = pa.Table.from_batches(pending).combine_chunks()
            head, rest = table.slice(0, n), table.slice(n)
            return head, rest

        for path, file in zip(self.paths, self.files):
            for batch in _batches(path, file, chunk_rows, columns):
                # One column order and one type per column for every file.
                pending.append(batch.select(columns).cast(self.schema))
                n_pending += batch.num_rows
                while n_pending >= chunk_rows:
                    head, rest = flush(chunk_rows)
                    yield self._parquet_spec(index, head, first)
                    index, first = index + 1, first + chunk_rows
                    pending, n_pending = rest.to_batches(), rest.num_rows
        if n_pending:
            head, _ = flush(n_pending)
            yield self._parquet_spec(index, head, first)

    def _parquet_spec(self, index, table, first):
        ids = None
        if self.id_column is not None:
            ids = _arrow_ids(table.column(self.id_column))
        return self._spec(index, _to_frame(table), first, ids=ids)


# -- the model's expected input ------------------------------------------------------
def _expected_input(expected):
    if not expected or expected.get("kind") != "array":
        return None
    return expected["inputs"].get("X")


def _expected_columns(expected):
    entry = _expected_input(expected)
    return None if entry is None else entry.get("columns")


def _expected_shape(expected):
    entry = _expected_input(expected)
    return None if entry is None else entry.get("shape")


def _is_numeric(dtype) -> bool | None:
    """Whether a recorded dtype (``"float64"``, ``"Int64"``, ``"category"``)
    is numeric; None when it is not a dtype (``"mixed"``, damaged)."""
    if not isinstance(dtype, str):
        return None
    try:
        return bool(is_numeric_dtype(pandas_dtype(dtype)))
    except (TypeError, ValueError):
        return None


def _numeric_columns(expected, features, text_columns=()) -> frozenset:
    """The columns of ``features`` that the model takes as numbers.

    The columns the training data held as numbers, when the model's layout
    records each column's dtype; every column when it records a numeric
    dtype for all of them (or none: trained on no DataFrame); no column when
    they had another dtype (text, categories) or several (``"mixed"``, in
    sidecars written before the dtype of each column was recorded: a text
    column read without an encoder would be taken for a numeric one). Never
    those of ``text_columns``, which the model encodes as text.

    Examples
    --------
    >>> from skestimators.scoring._readers import _numeric_columns
    >>> entry = {"columns": ["age", "city"], "dtypes": ["int64", "object"]}
    >>> layout = {"kind": "array", "inputs": {"X": entry}}
    >>> sorted(_numeric_columns(layout, ["age", "city"]))
    ['age']
    >>> sorted(_numeric_columns(None, ["age", "city"], text_columns={"city"}))
    ['age']
    """
    candidates = [c for c in features if c not in text_columns]
    entry = _expected_input(expected) or {}
    columns, dtypes = entry.get("columns"), entry.get("dtypes")
    if (
        isinstance(dtypes, list)
        and isinstance(columns, list)
        and len(dtypes) == len(columns)
    ):
        recorded = dict(zip(map(str, columns), dtypes))
        return frozenset(
            c for c in candidates if _is_numeric(recorded.get(c)) is not False
        )
    if entry.get("dtype") is not None and not _is_numeric(entry["dtype"]):
        return frozenset()
    return frozenset(candidates)
