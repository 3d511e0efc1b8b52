"""Resumable, atomic output: chunk parts, a manifest, assembly and rename.

While a job runs, every scored chunk is written to ``<OUT>.parts/`` as
``part-000123.parquet`` (and ``invalid-000123.parquet`` for its rows that
could not be scored), each to a temporary name renamed into place, and then
recorded in ``<OUT>.parts/manifest.jsonl``: a first line describing the job
(model hash, inputs with sizes and modification times, chunking), one line
per finished chunk with an xxh3-128 fingerprint of the chunk's input as read.
A job started again with the same arguments finds the manifest and skips the
recorded chunks whose input still has the recorded fingerprint; the others
are scored again. When every chunk is done the parts
are assembled into a temporary file next to ``OUT``, renamed to ``OUT`` and
the parts folder is removed, so ``OUT`` is either absent, the previous
complete output, or the new complete output; never a partial file.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._io import temporary_name
from ._readers import ScoringInputError

__all__ = ["FORMATS", "UNSCORED", "PartsWriter", "ResumeConflictError", "write_part"]

logger = logging.getLogger(__name__)

FORMATS = ("parquet", "csv", "npy")
MANIFEST = "manifest.jsonl"
#: Invalid rows listed in messages (all are in the invalid-rows file).
PREVIEW = 20
#: Placeholder column of a chunk in which no row could be scored.
UNSCORED = "__unscored__"


class ResumeConflictError(ValueError):
    """An unfinished job of other settings occupies the parts folder.

    Raised instead of mixing chunks of two jobs; rerun with the same settings,
    or throw the parts away (``skestimators score --restart``).

    Examples
    --------
    >>> from skestimators.scoring import ResumeConflictError
    >>> issubclass(ResumeConflictError, ValueError)
    True
    """


def _part_name(kind: str, index: int) -> str:
    return f"{kind}-{index:06d}.parquet"


def _write_table(table: pa.Table, path: Path) -> None:
    tmp = temporary_name(path)
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def write_part(
    parts_dir, index: int, table: pa.Table, invalid: pa.Table | None
) -> None:
    """Write one chunk's predictions (and its invalid rows) under ``parts_dir``.

    Runs wherever the chunk was scored (in the driver, or on a Dask worker
    that sees the same file system).
    """
    parts_dir = Path(parts_dir)
    if invalid is not None and invalid.num_rows:
        _write_table(invalid, parts_dir / _part_name("invalid", index))
    _write_table(table, parts_dir / _part_name("part", index))


def _fsync_append(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


class PartsWriter:
    """The parts folder of one scoring job, and the final assembly.

    Parameters
    ----------
    output : path-like
        The final file.
    output_format : {"parquet", "csv", "npy"}
        Format of the final file.
    job : dict
        JSON-able description of the job; a manifest with another
        description is an unfinished job of other settings.
    restart : bool, default=False
        Discard an unfinished job of other settings instead of refusing.
    """

    def __init__(self, output, output_format, job, *, restart=False):
        if output_format not in FORMATS:
            raise ValueError(
                f"output format must be one of {FORMATS}, got {output_format!r}."
            )
        self.output = Path(output)
        if not self.output.parent.is_dir():
            raise FileNotFoundError(
                f"Output folder {self.output.parent} does not exist."
            )
        self.format = output_format
        self.job = json.loads(json.dumps(job, sort_keys=True, default=str))
        self.dir = self.output.with_name(self.output.name + ".parts")
        self.manifest = self.dir / MANIFEST
        self.done: dict[int, dict] = {}
        self._open(restart)

    @property
    def invalid_path(self) -> Path:
        return self.output.with_name(self.output.name + ".invalid.csv")

    def _open(self, restart):
        if self.manifest.exists():
            job, done = self._read_manifest()
            if job == self.job:
                self.done = {
                    i: entry
                    for i, entry in done.items()
                    if (self.dir / _part_name("part", i)).exists()
                }
                logger.info("Resuming: %d chunk(s) already scored.", len(self.done))
                return
            if not restart:
                changed = sorted(
                    k
                    for k in set(job or {}) | set(self.job)
                    if (job or {}).get(k) != self.job.get(k)
                )
                raise ResumeConflictError(
                    f"{self.dir} holds an unfinished job with other settings "
                    f"({', '.join(changed) or 'unreadable manifest'} differ). "
                    "Run with the same arguments to resume it, or pass --restart "
                    "(restart=True) to discard it."
                )
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir()
        _fsync_append(self.manifest, {"job": self.job})

    def _read_manifest(self):
        job, done = None, {}
        with open(self.manifest) as f:
            for n, line in enumerate(f):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line torn by a crash
                if n == 0:
                    job = record.get("job")
                elif "chunk" in record:
                    done[int(record["chunk"])] = record
        return job, done

    def commit(self, index: int, n_rows: int, n_invalid: int, fingerprint: str) -> None:
        """Record a chunk whose part is written, with its input's fingerprint."""
        record = {
            "chunk": int(index),
            "rows": int(n_rows),
            "invalid": int(n_invalid),
            "fingerprint": str(fingerprint),
        }
        _fsync_append(self.manifest, record)
        self.done[int(index)] = record

    def unchanged(self, index: int, fingerprint: str) -> bool:
        """Whether chunk ``index`` is done and its input has ``fingerprint``."""
        entry = self.done.get(int(index))
        return entry is not None and entry.get("fingerprint") == fingerprint

    @property
    def rows_done(self) -> int:
        return sum(entry["rows"] for entry in self.done.values())

    def discard(self) -> None:
        """Remove the parts of a job that has nothing to assemble."""
        shutil.rmtree(self.dir, ignore_errors=True)

    def assemble(self, n_chunks: int) -> dict:
        """Write the final file (and invalid-rows file) and remove the parts.

        Returns ``{"rows": ..., "invalid": ..., "invalid_preview": [...]}``,
        the preview holding the first invalid rows as dicts.
        """
        missing = [i for i in range(n_chunks) if i not in self.done]
        if missing:
            raise RuntimeError(
                f"Chunks {missing[:10]} were not scored; cannot assemble."
            )
        parts = [self.dir / _part_name("part", i) for i in range(n_chunks)]
        invalid = [
            p
            for p in (self.dir / _part_name("invalid", i) for i in range(n_chunks))
            if p.exists()
        ]
        n_invalid, preview = 0, []
        if invalid:
            n_invalid, preview = self._write_invalid(invalid)
        else:
            self.invalid_path.unlink(missing_ok=True)
        n_rows = self._write_output(parts)
        shutil.rmtree(self.dir)
        return {"rows": n_rows, "invalid": n_invalid, "invalid_preview": preview}

    def _replace(self, write, target: Path, suffix=""):
        tmp = temporary_name(target, suffix)
        try:
            result = write(tmp)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return result

    def _write_invalid(self, paths) -> int:
        from pyarrow import csv

        def write(tmp):
            n, preview = 0, []
            with csv.CSVWriter(tmp, pq.read_schema(paths[0])) as out:
                for path in paths:
                    table = pq.read_table(path)
                    out.write_table(table)
                    n += table.num_rows
                    if len(preview) < PREVIEW:
                        preview += table.slice(0, PREVIEW - len(preview)).to_pylist()
            return n, preview

        return self._replace(write, self.invalid_path)

    def _write_output(self, parts) -> int:
        try:
            schema = pa.unify_schemas(
                [pq.read_schema(p) for p in parts], promote_options="permissive"
            )
        except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:
            raise ScoringInputError(
                "The chunks' ids or predictions have types that cannot be "
                f"combined ({exc}); give the ids one type in every input file "
                "(e.g. all text or all integers)."
            ) from exc
        schema = pa.schema([f for f in schema if f.name != UNSCORED])
        if self.job.get("id_source"):  # where the first column's ids come from
            schema = schema.with_metadata({"id_source": self.job["id_source"]})
        tables = (_conform(pq.read_table(p), schema) for p in parts)
        if self.format == "parquet":
            return self._replace(
                lambda tmp: _to_parquet(tables, schema, tmp), self.output
            )
        if self.format == "csv":
            return self._replace(lambda tmp: _to_csv(tables, schema, tmp), self.output)
        n_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
        ids_path = self.output.with_name(self.output.name[: -len(".npy")] + ".ids.npy")
        width = _id_width(parts, schema)
        return self._replace(
            lambda tmp: _to_npy(tables, schema, n_rows, tmp, ids_path, width),
            self.output,
            ".npy",
        )


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with the columns of ``schema`` (nulls where it lacks one)."""
    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.table(columns, schema=schema)


def _to_parquet(tables, schema, path) -> int:
    n = 0
    with pq.ParquetWriter(path, schema) as out:
        for table in tables:
            out.write_table(table)
            n += table.num_rows
    return n


def _to_csv(tables, schema, path) -> int:
    from pyarrow import csv

    n = 0
    with csv.CSVWriter(path, schema) as out:
        for table in tables:
            out.write_table(table)
            n += table.num_rows
    return n


def _id_width(parts, schema) -> int:
    """Characters of the longest text id of the parts (0 for numeric ids)."""
    field = schema.field(0)
    if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
        return 0
    width = 0
    for path in parts:
        lengths = pc.utf8_length(pq.read_table(path, columns=[field.name]).column(0))
        width = max(width, pc.max(lengths).as_py() or 0)
    return width


def _to_npy(tables, schema, n_rows, path, ids_path, id_width=0) -> int:
    """Predictions as a float64 ``.npy``; ids to ``<stem>.ids.npy`` unless 0..n-1."""
    values = schema.names[1:]
    bad = [
        f.name
        for f in schema
        if f.name in values
        and not (
            pa.types.is_floating(f.type)
            or pa.types.is_integer(f.type)
            or pa.types.is_boolean(f.type)
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
                ids = _IdsFile(ids_path, n_rows, chunk_ids.dtype, start, id_width)
            ids.write(start, stop, chunk_ids)
        start = stop
    out.flush()
    del out
    if ids is not None:
        ids.finish()
    else:
        ids_path.unlink(missing_ok=True)
    return n_rows


class _IdsFile:
    """The ids of an ``.npy`` output whose rows are not numbered 0..n-1."""

    def __init__(self, path, n_rows, dtype, start, width):
        self.path = Path(path)
        self.tmp = temporary_name(self.path, ".npy")
        # Text ids as wide as the longest (a fixed width would cut them).
        kind = np.dtype(dtype).kind
        if kind in "iu":
            dtype = np.int64
        elif kind == "f":
            dtype = np.float64
        else:
            dtype = np.dtype(f"U{max(width, 1)}")
        self.array = np.lib.format.open_memmap(
            self.tmp, mode="w+", dtype=dtype, shape=(n_rows,)
        )
        if start:
            self.array[:start] = np.arange(start)

    def write(self, start, stop, ids):
        self.array[start:stop] = ids

    def finish(self):
        self.array.flush()
        del self.array
        os.replace(self.tmp, self.path)
