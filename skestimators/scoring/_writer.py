"""Resumable, atomic output: chunk parts, a manifest, assembly and rename.

While a job runs, every scored chunk is written to ``<OUT>.parts/`` as
``part-000123.parquet`` (and ``invalid-000123.parquet`` for its rows that
could not be scored), each to a temporary name renamed into place, and then
recorded in ``<OUT>.parts/manifest.jsonl``: a first line describing the job
(model hash, inputs with their paths and sizes, chunking), one line
per finished chunk with an xxh3-128 fingerprint of the chunk's input as read.
A job started again with the same arguments finds the manifest and skips the
recorded chunks whose input still has the recorded fingerprint; the others
are scored again. When every chunk is done the parts
are assembled into temporary files next to ``OUT`` (the output, its
invalid-rows file and, for ``.npy``, its ids), renamed into place only once
all are complete, and the parts folder is removed, so ``OUT`` is either
absent, the previous complete output (with its invalid-rows file), or the
new complete output; never a partial file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .._io import (
    remove_stale_temporaries,
    sync_file,
    sync_folder,
    temporary_name,
)
from .._stack import caller_stacklevel
from ._formats import (
    companion_path,
    conform,
    id_width,
    ids_path,
    invalid_path,
    to_csv,
    to_npy,
    to_parquet,
)
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
    # On disk before the manifest (fsynced) can say this chunk is done: a
    # power cut must not leave a manifest line for an empty part.
    sync_file(tmp)
    os.replace(tmp, path)


def write_part(
    parts_dir, index: int, table: pa.Table, invalid: pa.Table | None
) -> None:
    """Write one chunk's predictions (and its invalid rows) under ``parts_dir``.

    Runs wherever the chunk was scored (in the driver, or on a Dask worker
    that sees the same file system).
    """
    parts_dir = Path(parts_dir)
    invalid_part = parts_dir / _part_name("invalid", index)
    if invalid is not None and invalid.num_rows:
        _write_table(invalid, invalid_part)
    else:  # a chunk scored again (resumed run) may have had invalid rows before
        invalid_part.unlink(missing_ok=True)
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
        self.dir = companion_path(self.output, ".parts")
        self.manifest = self.dir / MANIFEST
        self.done: dict[int, dict] = {}
        self._open(restart)

    @property
    def invalid_path(self) -> Path:
        return invalid_path(self.output)

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

    def assemble(self, n_chunks: int, columns=()) -> dict:
        """Write the final file (and invalid-rows file) and remove the parts.

        Both files are written to temporary names first and renamed into
        place only when both are complete, so a failure (a full disk) leaves
        the previous output and its invalid-rows file as they were.
        ``columns`` names the prediction columns of an output in which no
        row could be scored (they are then null).

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
        staged = []  # (temporary file or None to remove the target, target)
        try:
            n_rows = self._write_output(parts, columns, staged)
            n_invalid, preview = 0, []
            if invalid:
                n_invalid, preview = self._write_invalid(invalid, staged)
            else:
                staged.append((None, self.invalid_path))
        except BaseException:
            for tmp, _ in staged:
                if tmp is not None:
                    tmp.unlink(missing_ok=True)
            raise
        for tmp, _ in staged:
            if tmp is not None:
                sync_file(tmp)  # on disk before it takes the output's name
        for tmp, target in staged:  # the output first, then its companions
            if tmp is None:
                target.unlink(missing_ok=True)
            else:
                os.replace(tmp, target)
        sync_folder(self.output.parent)
        for _, target in staged:  # left by runs killed on this machine
            remove_stale_temporaries(target)
        shutil.rmtree(self.dir)
        return {"rows": n_rows, "invalid": n_invalid, "invalid_preview": preview}

    @contextlib.contextmanager
    def naming_a_full_disk(self):
        """A full disk (or quota) while writing the scores: say where, what
        is kept, and how to go on (pyarrow's message named no file)."""
        try:
            yield
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise OSError(
                exc.errno,
                "No space left on the disk (or over quota) while writing the "
                f"scores of {self.output}: the chunks scored so far are kept in "
                f"{self.dir}; free some space and run the same command again to "
                f"resume ({self.output} itself is unchanged)",
            ) from exc

    def warn_repeated_ids(self, n_chunks: int, id_name: str, id_source: str):
        """Warn when ids name more than one row: joining the predictions back
        by id would pair rows wrongly (image and exoplanet folders refuse
        them)."""
        n_repeated, examples = self.repeated_ids(n_chunks, id_name)
        if n_repeated:
            warnings.warn(
                f"{n_repeated} id(s) of the {id_source} name more than one row "
                f"(e.g. {', '.join(map(repr, examples))}): the predictions keep "
                "every row, in input order, but a join on the ids would pair rows "
                "wrongly. Give a column of unique ids (--id-column, id_column=), "
                "or none (the rows are then numbered).",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )

    def repeated_ids(self, n_chunks: int, id_name: str, limit: int = 3):
        """How many ids (not null) name more than one row, and up to
        ``limit`` of them, from the parts' id columns (8 bytes a row)."""
        parts = [self.dir / _part_name("part", i) for i in range(n_chunks)]

        def ids_of(part):
            ids = pq.read_table(part, columns=[id_name]).column(0).to_pandas()
            return ids[ids.notna()]

        hashes = [pd.util.hash_pandas_object(ids_of(p), index=False) for p in parts]
        every = np.concatenate([h.to_numpy() for h in hashes] or [np.empty(0)])
        values, counts = np.unique(every, return_counts=True)
        repeated = values[counts > 1]
        if not len(repeated):
            return 0, []
        wanted, examples = set(repeated[:limit].tolist()), {}
        for part, found in zip(parts, hashes):
            hit = found.isin(wanted).to_numpy()
            if hit.any():
                ids = ids_of(part)[hit]
                for h, value in zip(found[hit], ids):
                    examples.setdefault(int(h), value)
        return len(repeated), list(examples.values())

    @staticmethod
    def _stage(staged, write, target: Path, suffix=""):
        """``write(tmp)`` to a temporary name of ``target``, listed in ``staged``."""
        tmp = temporary_name(target, suffix)
        staged.append((tmp, target))
        return write(tmp)

    def _write_invalid(self, paths, staged) -> int:
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

        return self._stage(staged, write, self.invalid_path)

    def _schema(self, parts, columns) -> pa.Schema:
        """The output's schema: the parts' unified; ``columns`` (null float64)
        when no part has a prediction column."""
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
        fields = [f for f in schema if f.name != UNSCORED]
        if len(fields) == 1:  # no row was scored
            fields += [
                pa.field(name, pa.float64()) for name in columns or ["prediction"]
            ]
        schema = pa.schema(fields)
        if self.job.get("id_source"):  # where the first column's ids come from
            schema = schema.with_metadata({"id_source": self.job["id_source"]})
        return schema

    def _write_output(self, parts, columns, staged) -> int:
        schema = self._schema(parts, columns)
        tables = (conform(pq.read_table(p), schema) for p in parts)
        if self.format in ("parquet", "csv"):
            to_file = to_parquet if self.format == "parquet" else to_csv
            return self._stage(
                staged, lambda tmp: to_file(tables, schema, tmp), self.output
            )
        n_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
        width = id_width(parts, schema)
        ids_tmp = temporary_name(ids_path(self.output), ".npy")

        def write(tmp):
            try:
                return to_npy(tables, schema, n_rows, tmp, ids_tmp, width)
            except BaseException:
                ids_tmp.unlink(missing_ok=True)
                raise

        if self._stage(staged, write, self.output, ".npy"):
            staged.append((ids_tmp, ids_path(self.output)))
        else:  # the ids are the row positions: no ids file
            staged.append((None, ids_path(self.output)))
        return n_rows
