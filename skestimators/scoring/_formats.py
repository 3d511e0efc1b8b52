"""The final file of a scoring job, in each format, from its chunk parts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._io import companion_name, companion_path

__all__ = [
    "companion_path",
    "conform",
    "ids_path",
    "id_width",
    "invalid_path",
    "to_csv",
    "to_npy",
    "to_parquet",
]


def invalid_path(output) -> Path:
    """The invalid-rows file of an output: ``<output>.invalid.csv``."""
    return companion_path(output, ".invalid.csv")


def ids_path(output) -> Path:
    """The ids file of an ``.npy`` output: ``<stem>.ids.npy`` for ``<stem>.npy``,
    ``<name>.ids.npy`` for an output named otherwise."""
    output = Path(output)
    name = output.name
    stem = name[: -len(".npy")] if name.lower().endswith(".npy") else name
    return output.with_name(companion_name(stem, ".ids.npy"))


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with the columns of ``schema`` (nulls where it lacks one)."""
    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.table(columns, schema=schema)


def _write_all(out, tables) -> int:
    """Write ``tables`` with the Arrow writer ``out``; return the rows."""
    n = 0
    for table in tables:
        out.write_table(table)
        n += table.num_rows
    return n


def to_parquet(tables, schema, path) -> int:
    with pq.ParquetWriter(path, schema) as out:
        return _write_all(out, tables)


def to_csv(tables, schema, path) -> int:
    from pyarrow import csv

    with csv.CSVWriter(path, schema) as out:
        return _write_all(out, tables)


def id_width(parts, schema) -> int:
    """Characters of the longest text id of the parts (0 for numeric ids)."""
    field = schema.field(0)
    if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
        return 0
    width = 0
    for path in parts:
        lengths = pc.utf8_length(pq.read_table(path, columns=[field.name]).column(0))
        width = max(width, pc.max(lengths).as_py() or 0)
    return width


def npy_refusal(estimator, method):
    """Why .npy cannot hold the predictions of ``method``, known before
    scoring (the text labels of a classifier trained on strings), or None.
    :func:`to_npy` found them only when assembling, after every chunk."""
    classes = getattr(estimator, "classes_", None) if method == "predict" else None
    if classes is None:
        return None
    # One array, or one per target (of different lengths: a multi-output forest).
    parts = classes if isinstance(classes, (list, tuple)) else [classes]
    if all(np.asarray(part).dtype.kind in "biuf" for part in parts):
        return None
    return (
        "The classifier predicts text labels, which cannot be written to .npy; "
        "write Parquet or CSV, or score with method predict_proba."
    )


def to_npy(tables, schema, n_rows, path, ids_tmp, id_width=0) -> bool:
    """Predictions as a float64 ``.npy`` at ``path``.

    The ids are written to ``ids_tmp`` (an ``.npy`` file that the caller
    renames to :func:`ids_path`) unless they are the row positions 0..n-1;
    returns whether they were.
    """
    values = schema.names[1:]
    bad = [
        f.name
        for f in schema
        if f.name in values
        and not (
            pa.types.is_floating(f.type)
            or pa.types.is_integer(f.type)
            or pa.types.is_boolean(f.type)
            or pa.types.is_null(f.type)
        )
    ]
    if bad:
        raise ValueError(
            f"Prediction column(s) {bad} are not numeric and cannot be written to "
            ".npy; write Parquet or CSV instead."
        )
    shape = (n_rows,) if len(values) == 1 else (n_rows, len(values))
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=shape)
    ids = None
    start = 0
    plain_ids = True
    for table in tables:
        stop = start + table.num_rows
        block = np.column_stack(
            [
                table.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
                for c in values
            ]
        )
        out[start:stop] = block.reshape(out[start:stop].shape)
        chunk_ids = table.column(0).to_numpy(zero_copy_only=False)
        if plain_ids and not np.array_equal(chunk_ids, np.arange(start, stop)):
            plain_ids = False
        if not plain_ids:
            if ids is None:
                ids = _IdsFile(ids_tmp, n_rows, chunk_ids.dtype, start, id_width)
            ids.write(start, stop, chunk_ids, pa.types.is_integer(table.schema[0].type))
        start = stop
    out.flush()
    del out
    if ids is not None:
        ids.finish()
    return ids is not None


def _check_exact(ids):
    """Refuse integer ids that an .npy of floats (holding a missing id as
    NaN) would round into one another: those beyond 2**53."""
    ids = np.asarray(ids, dtype=np.float64)
    if np.max(np.abs(ids), where=~np.isnan(ids), initial=0) >= 2**53:
        raise ValueError(
            "The ids include missing values, which an .npy file of integers "
            "cannot hold, and ids beyond 2**53, which floats would round into "
            "one another: write Parquet or CSV instead."
        )


class _IdsFile:
    """The ids of an ``.npy`` output whose rows are not numbered 0..n-1."""

    def __init__(self, path, n_rows, dtype, start, width):
        # Text ids as wide as the longest (a fixed width would cut them).
        kind = np.dtype(dtype).kind
        if kind in "iu":
            dtype = np.int64
        elif kind == "f":
            dtype = np.float64
        else:
            dtype = np.dtype(f"U{max(width, 1)}")
        self.path = path
        self.array = np.lib.format.open_memmap(
            path, mode="w+", dtype=dtype, shape=(n_rows,)
        )
        if start:
            self.array[:start] = np.arange(start)

    def write(self, start, stop, ids, integer=False):
        """Write the ids of rows ``start:stop``; ``integer``: the input's ids
        are integers (read as floats where one is missing)."""
        ids = np.asarray(ids)
        if self.array.dtype.kind == "i" and ids.dtype.kind == "f":
            # Integer ids with a null (read as NaN): the cast wrote -2**63.
            _check_exact(self.array)
            self._as_floats()
        if integer and self.array.dtype.kind == "f":
            _check_exact(ids)
        self.array[start:stop] = ids

    def _as_floats(self):
        """The ids written so far, as float64 (NaN for a missing id)."""
        values = np.array(self.array, dtype=np.float64)
        self.array.flush()
        del self.array
        self.array = np.lib.format.open_memmap(
            self.path, mode="w+", dtype=np.float64, shape=values.shape
        )
        self.array[:] = values

    def finish(self):
        self.array.flush()
        del self.array
