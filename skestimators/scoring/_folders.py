"""Readers of folders: exoplanet spectra (``load_exoplanet`` layout) and images."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._multiinput import MultiInput
from ..preprocessing import AUX_COLUMNS
from ._csv import check_first_row, count_rows, read_frames, read_header
from ._readers import (
    ID_COLUMN,
    IMAGE_SUFFIXES,
    ROW_POSITION,
    Chunk,
    NpyRows,
    ScoringInputError,
    _expected_shape,
    _npy_header,
)

__all__ = ["ExoplanetReader", "ImageFolderReader"]


# -- exoplanet folders ----------------------------------------------------------------
@dataclass
class ExoplanetSpec:
    index: int
    spectra: NpyRows
    aux: pd.DataFrame
    bad: dict = field(default_factory=dict)  # position -> reason (text values)

    @property
    def n_rows(self):
        return len(self.aux)

    def load(self) -> Chunk:
        from ..datasets import _implausible_planets

        ids = self.aux.index.to_numpy()
        spectra = self.spectra.read()
        bad = {
            row: f"implausible spectrum: {reason}"
            for row, reason in _implausible_planets(spectra, self.aux).items()
        }
        bad.update(self.bad)
        return Chunk(ids, MultiInput(spectra=spectra, aux=self.aux), bad)


def _planet_ids(path: Path, n_rows: int):
    """The ``id`` column of ``path`` (``targets.csv``, ``auxiliary.csv``),
    checked; None if it has none."""
    if ID_COLUMN not in read_header(path):
        return None
    check_first_row(path)
    frames = read_frames(path, 1 << 16, text=ID_COLUMN)
    columns = [frame[ID_COLUMN] for frame in frames] or [pd.Series([], dtype=str)]
    ids = pd.concat(columns, ignore_index=True)
    if len(ids) != n_rows:
        raise ScoringInputError(
            f"The files disagree on the number of planets: spectra.npy has "
            f"{n_rows}, {path.name} {len(ids)}."
        )
    # Parsed from the text, exactly (through float64, ids above 2**53 were
    # rounded, into one another or away from load_exoplanet's).
    values = [_integer(t) for t in ids.astype(str).str.strip()]
    known = [v for v in values if v is not None]
    in_range = all(-(2**63) <= v < 2**63 for v in known)
    if len(known) != len(values) or not in_range or len(set(known)) < len(known):
        raise ScoringInputError(f"{path}: column 'id' must hold unique integers.")
    return np.array(values, dtype=np.int64)


def _integer(text: str):
    """``text`` as an int, exactly; None if it is not one.

    Digits are read as they are; "1.0" or "1e3" (a column that went through
    floats) only where a float64 holds the integer exactly.
    """
    if re.fullmatch(r"[+-]?[0-9]{1,19}", text):
        return int(text)
    try:
        value = float(text)
    except ValueError:
        return None
    if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return None


class ExoplanetReader:
    """A :func:`~skestimators.datasets.load_exoplanet` folder, streamed.

    ``spectra.npy`` is read through window mappings and ``auxiliary.csv`` in
    pandas chunks; each chunk is a MultiInput ``(spectra, aux)``. The ids are
    those of :func:`~skestimators.datasets.load_exoplanet`: the ``id`` column
    of ``targets.csv`` when the folder has one, else the row positions.
    """

    id_name = ID_COLUMN
    rows_exact = True

    def __init__(self, folder):
        self.folder = Path(folder)
        self.paths = [self.folder / "spectra.npy", self.folder / "auxiliary.csv"]
        for path in self.paths:
            if not path.is_file():
                raise ScoringInputError(f"Exoplanet folder lacks {path.name}: {path}")
        self.header = _npy_header(self.paths[0])
        shape = self.header[2]
        if len(shape) != 3:
            raise ScoringInputError(
                f"{self.paths[0]} must have shape (n_planets, n_wavelengths, 3); "
                f"got {shape}."
            )
        columns = read_header(self.paths[1])
        missing = [c for c in AUX_COLUMNS if c not in columns]
        if missing:
            raise ScoringInputError(
                f"{self.paths[1]} lacks the columns {missing}; it needs "
                f"{list(AUX_COLUMNS)}."
            )
        n_aux = count_rows(self.paths[1])  # rows, not lines (blank lines)
        if n_aux != shape[0]:
            raise ScoringInputError(
                f"The files disagree on the number of planets: spectra.npy has "
                f"{shape[0]}, auxiliary.csv {n_aux}."
            )
        self.n_rows = shape[0]
        targets = self.folder / "targets.csv"
        self.ids = _planet_ids(targets, self.n_rows) if targets.is_file() else None
        self.id_source = "column 'id' of targets.csv"
        if self.ids is not None:
            self.paths.append(targets)
        # pandas' to_csv writes the index: an "id" column of the planets' ids.
        own = _planet_ids(self.paths[1], self.n_rows) if ID_COLUMN in columns else None
        if own is not None and self.ids is not None:
            if not np.array_equal(own, self.ids):
                row = int(np.flatnonzero(own != self.ids)[0])
                raise ScoringInputError(
                    f"The 'id' columns of auxiliary.csv and targets.csv disagree "
                    f"(row {row}: {own[row]} and {self.ids[row]}); they must name "
                    "the same planet in each row."
                )
        elif own is not None:
            self.ids, self.id_source = own, "column 'id' of auxiliary.csv"
        if self.ids is None:
            self.id_source = ROW_POSITION
        self.row_bytes = math.prod(shape[1:]) * np.dtype(self.header[1]).itemsize
        self.layout = {
            "kind": "named",
            "inputs": {
                "spectra": {"shape": list(shape[1:]), "columns": None},
                "aux": {"shape": [len(AUX_COLUMNS)], "columns": list(AUX_COLUMNS)},
            },
        }

    def specs(self, chunk_rows):
        offset, dtype, shape, fortran = self.header
        start = 0
        # Every column is parsed, so a row with a field too many is refused.
        aux_chunks = read_frames(self.paths[1], chunk_rows)
        for index, aux in enumerate(aux_chunks):
            stop = start + len(aux)
            raw = aux[list(AUX_COLUMNS)]
            aux = raw.apply(pd.to_numeric, errors="coerce")
            text = {}
            for column in AUX_COLUMNS:
                for row in np.flatnonzero(aux[column].isna() & raw[column].notna()):
                    text.setdefault(
                        int(row), f"text in numeric column {column!r} of auxiliary.csv"
                    )
            if self.ids is None:
                aux.index = pd.RangeIndex(start, stop, name=ID_COLUMN)
            else:
                aux.index = pd.Index(self.ids[start:stop], name=ID_COLUMN)
            spectra = str(self.paths[0].absolute())  # read by Dask workers too
            rows = NpyRows(spectra, offset, dtype, shape, fortran, start, stop)
            yield ExoplanetSpec(index, rows, aux.astype(np.float64), text)
            start = stop


# -- image folders --------------------------------------------------------------------
@dataclass
class ImageSpec:
    index: int
    files: tuple  # the image file of each id, listed once by the reader
    ids: np.ndarray
    size: int | None
    crop: int | None
    channels_last: bool = False
    whole_at_size: bool = False

    @property
    def n_rows(self):
        return len(self.ids)

    def load(self) -> Chunk:
        from ..datasets import _read_image

        images, bad = [], {}
        keep = self.size if self.whole_at_size else None  # read those whole
        for position, path in enumerate(self.files):
            try:
                images.append(_read_image(Path(path), self.crop, self.size, keep=keep))
            except ValueError as exc:
                bad[position] = f"unreadable image: {exc}"
                images.append(None)
        shape = next((i.shape for i in images if i is not None), (3, 1, 1))
        X = np.stack([np.zeros(shape, np.float32) if i is None else i for i in images])
        if self.channels_last:  # the layout the model was trained in
            X = np.ascontiguousarray(np.moveaxis(X, 1, -1))
        return Chunk(self.ids, X, bad)


def _image_files(folder: Path):
    """``(ids, files)`` of the images of ``folder``, sorted by id.

    The ids are the file stems: integers (as ``load_galaxy_zoo`` reads them)
    when every stem is made of digits, else the stems as strings. Hidden
    files (``._1234.jpg`` of macOS archives) are not images.
    """
    paths = [
        p
        for p in folder.absolute().iterdir()  # absolute: read by Dask workers too
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    ]
    stems = [p.stem for p in paths]
    numeric = all(s.isascii() and s.isdigit() and int(s) < 2**63 for s in stems)
    keys = [int(s) for s in stems] if numeric else stems
    files = dict(zip(keys, map(str, paths)))
    if len(files) < len(paths):
        twice = sorted(key for key, n in Counter(keys).items() if n > 1)
        names = sorted(p.name for p, key in zip(paths, keys) if key == twice[0])
        raise ScoringInputError(
            f"{len(twice)} id(s) name several images of {folder}, e.g. "
            f"{twice[0]!r} ({', '.join(names)}); each image needs its own id "
            "(file stem)."
        )
    ids = sorted(files)
    array = np.array(ids, dtype=np.int64 if numeric else object)
    return array, [files[i] for i in ids]


class ImageFolderReader:
    """A folder of ``<GalaxyID>.jpg`` images, read as ``load_galaxy_zoo`` reads them
    (the folder is listed once; each chunk reads only its own files). The ids
    are the file stems."""

    id_name = "GalaxyID"
    id_source = "image file stem"
    rows_exact = True

    def __init__(self, folder, *, expected=None, crop=207, whole_at_size=False):
        self.folder = Path(folder)
        self.ids, self.files = _image_files(self.folder)
        self.paths = [self.folder]
        shape = _expected_shape(expected)
        self.size, self.channels_last = 69, False
        if shape is not None and len(shape) == 3 and shape[1] == shape[2]:
            self.size = int(shape[1])
        elif shape is not None and len(shape) == 3 and shape[0] == shape[1]:
            # A model trained on (height, width, channels) images.
            self.size, self.channels_last = int(shape[0]), True
        self.crop = crop
        self.whole_at_size = whole_at_size
        self.n_rows = len(self.ids)
        self.row_bytes = 3 * self.size * self.size * 4
        side = [self.size, self.size]
        self.layout = {
            "kind": "array",
            "inputs": {
                "X": {
                    "shape": [*side, 3] if self.channels_last else [3, *side],
                    "columns": None,
                }
            },
        }

    def specs(self, chunk_rows):
        for index, start in enumerate(range(0, self.n_rows, chunk_rows)):
            stop = start + chunk_rows
            files = tuple(self.files[start:stop])
            yield ImageSpec(
                index,
                files,
                self.ids[start:stop],
                self.size,
                self.crop,
                self.channels_last,
                self.whole_at_size,
            )
