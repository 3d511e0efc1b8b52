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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["Chunk", "CsvReader", "NpyReader", "ParquetReader", "ScoringInputError"]

#: Target size of one chunk when ``chunk_rows`` is not given.
CHUNK_BYTES = 32 << 20
RASTER_SUFFIXES = (".tif", ".tiff")
IMAGE_SUFFIXES = (".jpg", ".jpeg")
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
    if array.ndim < 1 or array.dtype.hasobject:
        raise ScoringInputError(
            f"{path} must hold a numeric array with a row axis; got shape "
            f"{array.shape} and dtype {array.dtype}."
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
                rows = NpyRows(str(path), offset, dtype, shape, fortran, start, stop)
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

    @property
    def n_rows(self):
        return len(self.ids)

    def load(self) -> Chunk:
        return Chunk(self.ids, self.X)


class _TableReader:
    """Shared by the table readers: the id column and the model's columns.

    The ids are the ``id_column`` named, else a column literally named
    ``id``, else the row positions (from 0, over all files in order). A named
    id column is never passed to the model; a detected ``id`` column is
    passed only when the model was trained on a column of that name.
    """

    id_name = ID_COLUMN

    def _setup(self, columns, id_column, expected):
        columns = [str(c) for c in columns]
        wanted = _expected_columns(expected)
        if id_column is not None:
            if id_column not in columns:
                raise ScoringInputError(
                    f"--id-column {id_column!r} is not a column of {self.source}; "
                    f"its columns start {columns[:8]}."
                )
            features = [c for c in columns if c != id_column]
        elif ID_COLUMN in columns:
            id_column = ID_COLUMN
            features = [
                c for c in columns if c != id_column or (wanted and c in wanted)
            ]
        else:
            features = columns
        self.id_column = id_column
        self.id_name = id_column or ID_COLUMN
        self.id_source = ROW_POSITION if id_column is None else f"column {id_column!r}"
        if wanted is not None:
            missing = [c for c in wanted if c not in features]
            if missing:
                raise ScoringInputError(
                    f"{self.source} lacks {len(missing)} column(s) the model was "
                    f"trained on: {missing[:10]}{' ...' if len(missing) > 10 else ''}."
                )
            features = list(wanted)
        self.features = features
        self.dtype_hint = _expected_dtype(expected)
        self.layout = {
            "kind": "array",
            "inputs": {"X": {"shape": [len(features)], "columns": features}},
        }

    @property
    def columns(self):
        """The columns to read: the model's, then the id column (once)."""
        extra = [self.id_column] if self.id_column not in (None, *self.features) else []
        return self.features + extra

    def _frame(self, frame: pd.DataFrame, first: int):
        if self.id_column is None:
            ids = np.arange(first, first + len(frame))
        else:
            ids = frame[self.id_column].to_numpy()
        X = frame[self.features]
        if self.dtype_hint in (None, "numeric"):
            objects = [c for c in X.columns if X[c].dtype == object]
            if objects:
                X = X.copy()
                for c in objects:
                    X[c] = pd.to_numeric(X[c], errors="coerce")
        return ids, X.reset_index(drop=True)


class ParquetReader(_TableReader):
    """Parquet files, read in record batches regrouped into chunks."""

    def __init__(self, paths, *, id_column=None, expected=None):
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
        names = [tuple(f.schema_arrow.names) for f in self.files]
        if len(set(names)) > 1:
            raise ScoringInputError("The Parquet inputs have different columns.")
        self.n_rows = sum(f.metadata.num_rows for f in self.files)
        self._setup(names[0], id_column, expected)
        self.row_bytes = 8 * (len(self.features) + 1)

    def specs(self, chunk_rows):
        import pyarrow as pa

        columns = self.columns
        index, first, pending, n_pending = 0, 0, [], 0

        def flush(n):
            table = pa.Table.from_batches(pending).combine_chunks()
            head, rest = table.slice(0, n), table.slice(n)
            return head, rest

        for file in self.files:
            for batch in file.iter_batches(batch_size=chunk_rows, columns=columns):
                pending.append(batch)
                n_pending += batch.num_rows
                while n_pending >= chunk_rows:
                    head, rest = flush(chunk_rows)
                    ids, X = self._frame(head.to_pandas(), first)
                    yield DataSpec(index, ids, X)
                    index, first = index + 1, first + chunk_rows
                    pending, n_pending = rest.to_batches(), rest.num_rows
        if n_pending:
            head, _ = flush(n_pending)
            ids, X = self._frame(head.to_pandas(), first)
            yield DataSpec(index, ids, X)


#: An integer written canonically (no sign "+", no leading zero), in int64.
_INTEGER = r"-?(?:0|[1-9][0-9]{0,17})"


def _integer_ids(path: Path, column: str, chunk_rows: int = 1 << 20) -> bool:
    """Whether every id of ``column`` is an integer written canonically (so
    reading it as a number loses nothing); read as text, chunk by chunk."""
    with pd.read_csv(
        path, usecols=[column], dtype=str, keep_default_na=False, chunksize=chunk_rows
    ) as chunks:
        for chunk in chunks:
            if not chunk[column].str.fullmatch(_INTEGER).all():
                return False
    return True


def _count_lines(path: Path) -> int:
    count, last = 0, b"\n"
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


class CsvReader(_TableReader):
    """CSV files, read with pandas in chunks."""

    def __init__(self, paths, *, id_column=None, expected=None):
        self.paths = [Path(p) for p in paths]
        self.source = ", ".join(p.name for p in self.paths)
        headers = []
        for path in self.paths:
            try:
                headers.append(tuple(pd.read_csv(path, nrows=0).columns))
            except (
                pd.errors.EmptyDataError,
                pd.errors.ParserError,
                OSError,
                UnicodeDecodeError,
            ) as exc:
                raise ScoringInputError(
                    f"{path} is not a readable CSV file: {exc}"
                ) from exc
        if len(set(headers)) > 1:
            raise ScoringInputError("The CSV inputs have different columns.")
        self.n_rows = sum(max(_count_lines(p) - 1, 0) for p in self.paths)
        self._setup(headers[0], id_column, expected)
        self.row_bytes = 8 * (len(self.features) + 1)
        # One id type for the whole job, decided on every row: integers when
        # every id is written as one, else the text as written ("007").
        self.integer_ids = self.id_column is not None and all(
            _integer_ids(path, self.id_column) for path in self.paths
        )

    def specs(self, chunk_rows):
        columns = self.columns
        index, first = 0, 0
        for path in self.paths:
            try:  # closed even when the consumer stops early
                # Ids as written ("007" is not 7), of one type in every chunk.
                ids_as_text = {} if self.id_column is None else {self.id_column: str}
                with pd.read_csv(
                    path, usecols=columns, chunksize=chunk_rows, dtype=ids_as_text
                ) as rows:
                    for frame in rows:
                        ids, X = self._frame(frame, first)
                        if self.integer_ids:
                            ids = ids.astype(np.int64)
                        yield DataSpec(index, ids, X)
                        index, first = index + 1, first + len(frame)
            except (pd.errors.ParserError, UnicodeDecodeError) as exc:
                raise ScoringInputError(
                    f"{path} could not be parsed near row {first}: {exc}"
                ) from exc


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


def _expected_dtype(expected):
    entry = _expected_input(expected)
    dtype = None if entry is None else entry.get("dtype")
    if dtype is None:
        return None
    try:
        return "numeric" if np.dtype(dtype).kind in "iufb" else "other"
    except TypeError:
        return "other"
