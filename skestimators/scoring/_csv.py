"""CSV inputs: every row checked for its number of fields, ids read as written.

pandas drops the extra fields of a row when only some columns are read
(``usecols``) and takes the first field as an index when the first row has
one field more than the header, so that a row with a decimal comma is shifted
and scored with wrong values. These readers parse every column, refuse such
rows with an error naming the file and line, and read the id column as text,
without turning ids such as ``NA`` or ``None`` into missing values.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ._readers import ScoringInputError, _TableReader

__all__ = ["CsvReader", "count_rows", "read_frames", "read_header"]

#: The strings pandas reads as missing by default (see ``pandas.read_csv``).
NA_VALUES = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)
_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
#: An integer written canonically (no sign "+", no leading zero, no "-0"),
#: in int64.
_INTEGER = r"(?:0|-?[1-9][0-9]{0,17})"
_ERRORS = (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError)


def csv_error(path, exc, row=None) -> ScoringInputError:
    """A one-line ScoringInputError for a pandas error reading ``path``."""
    fields = _FIELDS.search(str(exc))
    if fields:
        expected, line, seen = fields.groups()
        return ScoringInputError(
            f"{path}: line {line} has {seen} fields, but the header has {expected} "
            "(a decimal comma or an unquoted separator?); fix or remove that row."
        )
    where = "" if row is None else f" near row {row}"
    if isinstance(exc, UnicodeDecodeError):
        return ScoringInputError(f"{path} is not UTF-8 text{where}: {exc}")
    text = " ".join(str(exc).split())
    return ScoringInputError(f"{path} could not be parsed{where}: {text}")


def read_header(path: Path) -> list[str]:
    """The column names of the CSV file ``path``, as pandas names them."""
    try:
        return [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except (*_ERRORS, OSError) as exc:
        raise ScoringInputError(f"{path} is not a readable CSV file: {exc}") from exc


def check_first_row(path: Path) -> None:
    """Refuse a first row longer than the header (pandas would make it an index)."""
    try:
        pd.read_csv(path, header=None, nrows=2, dtype=str, keep_default_na=False)
    except _ERRORS as exc:
        raise csv_error(path, exc) from exc


def read_frames(path: Path, chunk_rows: int, *, text=None, header=None, strings=()):
    """Frames of ``chunk_rows`` rows of ``path``, every column parsed.

    Parameters
    ----------
    path : pathlib.Path
        A CSV file with a header.
    chunk_rows : int
        Rows per frame.
    text : str, default=None
        A column read as written: as text, with no value taken as missing.
    header : list of str, default=None
        The columns of ``path`` if known (see :func:`read_header`).
    strings : collection of str, default=()
        Columns read as text, their missing values as NaN: a model's
        categories, which pandas would otherwise parse as numbers in a chunk
        holding digits only (``"07"`` read as 7).

    Yields
    ------
    frame : pandas.DataFrame
        The next rows. A row with more fields than the header raises a
        ScoringInputError naming its line.
    """
    options = {"chunksize": chunk_rows, "index_col": False}
    dtype = dict.fromkeys(strings, str)
    if text is not None:
        header = read_header(path) if header is None else header
        others = [c for c in header if c != text]
        dtype[text] = str
        options.update(
            keep_default_na=False, na_values={c: list(NA_VALUES) for c in others}
        )
    if dtype:
        options["dtype"] = dtype
    row = 0
    try:
        with pd.read_csv(path, **options) as frames:  # closed if stopped early
            for frame in frames:
                yield frame
                row += len(frame)
    except _ERRORS as exc:
        raise csv_error(path, exc, row) from exc


def count_rows(path: Path) -> int:
    """Rows of the CSV file ``path`` as pandas parses them (blank lines are
    not rows, a quoted field may hold newlines)."""
    check_first_row(path)
    return sum(len(frame) for frame in read_frames(path, 1 << 16))


def estimate_rows(path: Path) -> int:
    """Rows of ``path`` from its line breaks (``\\n``, else ``\\r``): a quick
    estimate for progress bars, not exact (blank lines, quoted newlines)."""
    newlines = returns = 0
    last = b"\n"
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            newlines += block.count(b"\n")
            returns += block.count(b"\r")
            last = block[-1:]
    lines = (newlines or returns) + (last not in (b"\n", b"\r"))
    return max(lines - 1, 0)


def integer_ids(path: Path, column: str, chunk_rows: int = 1 << 20) -> bool:
    """Whether every id of ``column`` is an integer written canonically (so
    reading it as a number loses nothing); read as text, chunk by chunk."""
    options = {"dtype": str, "keep_default_na": False, "chunksize": chunk_rows}
    try:
        with pd.read_csv(path, usecols=[column], **options) as chunks:
            for chunk in chunks:
                if not chunk[column].str.fullmatch(_INTEGER).all():
                    return False
    except _ERRORS as exc:
        raise csv_error(path, exc) from exc
    return True


class CsvReader(_TableReader):
    """CSV files, read with pandas in chunks, every row's fields checked.

    ``n_rows`` is an estimate from the line breaks (exact for files without
    blank lines or quoted newlines); the scorer corrects its progress total
    at the end.
    """

    rows_exact = False

    def __init__(self, paths, *, id_column=None, expected=None, text_columns=()):
        self.paths = [Path(p) for p in paths]
        self.source = ", ".join(p.name for p in self.paths)
        headers = [read_header(path) for path in self.paths]
        self._check_same_columns("CSV", headers)
        for path in self.paths:
            check_first_row(path)
        self.n_rows = sum(estimate_rows(p) for p in self.paths)
        self.header = list(headers[0])
        self._setup(self.header, id_column, expected, text_columns)
        self.text_features = [c for c in self.features if c in text_columns]
        # Every column is parsed (to check each row's fields), not only the model's.
        self.row_bytes = 8 * (len(headers[0]) + 1)
        # One id type for the whole job, decided on every row: integers when
        # every id is written as one, else the text as written ("007", "NA").
        self.integer_ids = self.id_column is not None and all(
            integer_ids(path, self.id_column) for path in self.paths
        )

    def specs(self, chunk_rows):
        index, first = 0, 0
        for path in self.paths:
            frames = read_frames(
                path,
                chunk_rows,
                text=self.id_column,
                header=self.header,
                strings=self.text_features,
            )
            for frame in frames:
                yield self._spec(index, frame, first)
                index, first = index + 1, first + len(frame)
