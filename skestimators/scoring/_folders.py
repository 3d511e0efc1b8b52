"""Readers of folders: exoplanet spectra (``load_exoplanet`` layout) and images."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._multiinput import MultiInput
from ..preprocessing import AUX_COLUMNS
from ._readers import (
    IMAGE_SUFFIXES,
    Chunk,
    NpyRows,
    ScoringInputError,
    _count_lines,
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

    @property
    def n_rows(self):
        return len(self.aux)

    def load(self) -> Chunk:
        ids = np.arange(self.spectra.start, self.spectra.stop)
        X = MultiInput(spectra=self.spectra.read(), aux=self.aux)
        return Chunk(ids, X)


class ExoplanetReader:
    """A :func:`~skestimators.datasets.load_exoplanet` folder, streamed.

    ``spectra.npy`` is read through window mappings and ``auxiliary.csv`` in
    pandas chunks; each chunk is a MultiInput ``(spectra, aux)``.
    """

    id_name = "id"

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
        columns = [str(c) for c in pd.read_csv(self.paths[1], nrows=0).columns]
        missing = [c for c in AUX_COLUMNS if c not in columns]
        if missing:
            raise ScoringInputError(
                f"{self.paths[1]} lacks the columns {missing}; it needs "
                f"{list(AUX_COLUMNS)}."
            )
        n_aux = max(_count_lines(self.paths[1]) - 1, 0)
        if n_aux != shape[0]:
            raise ScoringInputError(
                f"The files disagree on the number of planets: spectra.npy has "
                f"{shape[0]}, auxiliary.csv {n_aux}."
            )
        self.n_rows = shape[0]
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
        aux_chunks = pd.read_csv(
            self.paths[1], usecols=list(AUX_COLUMNS), chunksize=chunk_rows
        )
        for index, aux in enumerate(aux_chunks):
            stop = start + len(aux)
            aux = aux[list(AUX_COLUMNS)].apply(pd.to_numeric, errors="coerce")
            aux.index = pd.RangeIndex(start, stop, name="id")
            rows = NpyRows(
                str(self.paths[0]), offset, dtype, shape, fortran, start, stop
            )
            yield ExoplanetSpec(index, rows, aux.astype(np.float64))
            start = stop


# -- image folders --------------------------------------------------------------------
@dataclass
class ImageSpec:
    index: int
    files: tuple  # the image file of each id, listed once by the reader
    ids: np.ndarray
    size: int | None
    crop: int | None

    @property
    def n_rows(self):
        return len(self.ids)

    def load(self) -> Chunk:
        from ..datasets import _read_image

        images, bad = [], {}
        for position, path in enumerate(self.files):
            try:
                images.append(_read_image(Path(path), self.crop, self.size))
            except ValueError as exc:
                bad[position] = f"unreadable image: {exc}"
                images.append(None)
        shape = next((i.shape for i in images if i is not None), (3, 1, 1))
        X = np.stack([np.zeros(shape, np.float32) if i is None else i for i in images])
        return Chunk(self.ids, X, bad)


class ImageFolderReader:
    """A folder of ``<GalaxyID>.jpg`` images, read as ``load_galaxy_zoo`` reads them
    (the folder is listed once; each chunk reads only its own files)."""

    id_name = "GalaxyID"

    def __init__(self, folder, *, expected=None, crop=207):
        self.folder = Path(folder)
        files = {
            int(p.stem): str(p)
            for p in self.folder.iterdir()
            if p.suffix.lower() in IMAGE_SUFFIXES and p.stem.isdigit()
        }
        self.ids = np.array(sorted(files), dtype=np.int64)
        self.files = [files[i] for i in self.ids.tolist()]
        self.paths = [self.folder]
        shape = _expected_shape(expected)
        self.size = 69
        if shape is not None and len(shape) == 3 and shape[1] == shape[2]:
            self.size = int(shape[1])
        self.crop = crop
        self.n_rows = len(self.ids)
        self.row_bytes = 3 * self.size * self.size * 4
        self.layout = {
            "kind": "array",
            "inputs": {"X": {"shape": [3, self.size, self.size], "columns": None}},
        }

    def specs(self, chunk_rows):
        for index, start in enumerate(range(0, self.n_rows, chunk_rows)):
            stop = start + chunk_rows
            files = tuple(self.files[start:stop])
            yield ImageSpec(index, files, self.ids[start:stop], self.size, self.crop)
