"""Galaxy Zoo (Kaggle Galaxy Challenge, 2014) files: images, solutions, submissions."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.utils import Bunch

from .._io import temporary_name
from ..galaxy_zoo import GALAXY_ZOO_COLUMNS
from ._galaxy_render import _render
from ._galaxy_sim import _check_int, _simulate
from ._images import _check_clashes, _files_by_id, _read_images
from ._tables import read_csv_table

__all__ = [
    "load_galaxy_zoo",
    "write_galaxy_zoo_folder",
    "write_galaxy_zoo_submission",
]

_ID = "GalaxyID"
_COLUMNS = list(GALAXY_ZOO_COLUMNS)
#: Side of a Kaggle image and of the crop that ``make_galaxy_zoo`` shows.
_KAGGLE_SIZE, _KAGGLE_CROP = 424, 207


def _check_columns(columns, source: str, *, exact: bool = True) -> None:
    missing = [c for c in _COLUMNS if c not in columns]
    extra = [c for c in columns if c not in _COLUMNS and c != _ID]
    if missing or (exact and extra):
        raise ValueError(
            f"{source} must have the columns {_ID}, Class1.1 ... Class11.6 (the 37 "
            f"Galaxy Zoo answers); missing {missing[:6]}"
            + (f" ({len(missing)} in all)" if len(missing) > 6 else "")
            + (f", unexpected {extra[:6]}" if extra else "")
            + "."
        )


def _read_solutions(path) -> tuple[np.ndarray, pd.DataFrame]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Solutions file not found: {path}")
    table = read_csv_table(path)
    table.columns = [str(c).strip() for c in table.columns]
    if _ID not in table.columns:
        raise ValueError(
            f"{path} has no {_ID} column; its columns start {list(table.columns)[:4]}."
        )
    _check_columns(table.columns, str(path))
    ids = _integer_ids(table[_ID], path)
    y = table[_COLUMNS].apply(pd.to_numeric, errors="coerce").astype(np.float64)
    if y.isna().any().any():
        raise ValueError(f"{path} has missing or non-numeric vote fractions.")
    outside = ((y < 0) | (y > 1)).any(axis=1)
    if outside.any():
        raise ValueError(
            f"{path}: vote fractions lie between 0 and 1; {int(outside.sum())} "
            f"rows have others, e.g. {_ID} {ids[outside.to_numpy()][:3].tolist()}."
        )
    return ids, y.reset_index(drop=True)


def load_galaxy_zoo(
    images_dir,
    solutions_csv=None,
    *,
    size: int | None = 69,
    crop: int | None = 207,
    ids=None,
    n_jobs: int | None = None,
):
    """Load Galaxy Challenge images and, optionally, their vote fractions.

    Reads the Kaggle layout: a folder of ``<GalaxyID>.jpg`` images (424x424
    RGB) and ``training_solutions_rev1.csv`` with the columns ``GalaxyID,
    Class1.1, ..., Class11.6``. Each image is centre-cropped to
    ``crop x crop`` pixels, then resized to ``size x size`` (PIL bilinear,
    antialiased). Images that are not RGB are converted; an image with an
    EXIF orientation is first turned (or mirrored) as viewers show it.

    Parameters
    ----------
    images_dir : str or path-like
        Folder of ``<GalaxyID>.jpg`` images, e.g. ``images_training_rev1``;
        other files are ignored.
    solutions_csv : str or path-like, default=None
        The solutions file. Without it, every image of the folder is loaded,
        sorted by GalaxyID, and ``y`` is None.
    size : int or None, default=69
        Side of the returned images; None keeps the cropped size. With
        ``crop=None`` the images must then be square: resizing others to a
        square would stretch them (a ValueError suggests
        ``crop=min(width, height)``, their centre square).
    crop : int or None, default=207
        Side of the centre crop, before resizing; None keeps whole images.
    ids : array-like of int, default=None
        Load only these GalaxyIDs, in this order.
    n_jobs : int, default=None
        Threads decoding images (``-1``: all cores), via joblib.

    Returns
    -------
    X : ndarray of shape (n_images, 3, size, size), dtype float32
        RGB images in [0, 1], channels first.
    y : DataFrame of shape (n_images, 37) or None
        Vote fractions (columns ``Class1.1`` ... ``Class11.6``), row ``i``
        belonging to ``X[i]``.
    ids : ndarray of int64, shape (n_images,)
        The GalaxyIDs, in the order of the solutions file (or sorted).

    Raises
    ------
    FileNotFoundError
        If the folder or the solutions file does not exist.
    ValueError
        If the folder has no images, a GalaxyID of the solutions has no
        image or names two (``0100008.jpg`` and ``100008.jpg``), an image
        cannot be read or is smaller than ``crop``, or the solutions file
        lacks columns.

    See Also
    --------
    write_galaxy_zoo_submission : Write predictions for Kaggle.
    write_galaxy_zoo_folder : Write simulated galaxies in this layout.

    Examples
    --------
    >>> import tempfile
    >>> from skestimators.datasets import load_galaxy_zoo, write_galaxy_zoo_folder
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = write_galaxy_zoo_folder(tmp, n_samples=3, random_state=0)
    ...     X, y, ids = load_galaxy_zoo(folder.images_dir, folder.solutions_csv)
    >>> X.shape, y.shape, bool((ids == folder.ids).all())
    ((3, 3, 69, 69), (3, 37), True)
    """
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise FileNotFoundError(f"Image folder not found: {images_dir}")
    crop = None if crop is None else _check_int(crop, "crop", 1)
    size = None if size is None else _check_int(size, "size", 1)
    files, clashes = _files_by_id(
        images_dir,
        (".jpg", ".jpeg"),
        lambda p: int(p.stem) if p.stem.isdigit() else None,
    )
    if not files:
        raise ValueError(f"No <GalaxyID>.jpg images in {images_dir}.")
    y = None
    if solutions_csv is not None:
        all_ids, y = _read_solutions(solutions_csv)
    else:
        all_ids = np.array(sorted(files), dtype=np.int64)
    if ids is not None:
        requested = np.asarray(ids).ravel()
        if requested.dtype.kind not in "iu" and not (
            requested.dtype.kind == "f" and np.all(requested % 1 == 0)
        ):
            raise ValueError(
                f"ids must be integer GalaxyIDs, got {requested[:5].tolist()} "
                f"(dtype {requested.dtype})."
            )
        wanted = requested.astype(np.int64)
        repeated = pd.Index(wanted)[pd.Index(wanted).duplicated()].unique()
        if len(repeated):  # a galaxy twice would sit on both sides of a split
            raise ValueError(
                f"ids must be unique; {len(repeated)} are repeated, e.g. "
                f"{repeated[:5].tolist()}."
            )
        position = pd.Index(all_ids).get_indexer(wanted)
        if (position < 0).any():
            unknown = wanted[position < 0]
            raise ValueError(
                f"{len(unknown)} of the requested ids are not in "
                f"{solutions_csv or images_dir}, e.g. {unknown[:5].tolist()}."
            )
        all_ids = all_ids[position]
        y = None if y is None else y.iloc[position].reset_index(drop=True)
    missing = [int(i) for i in all_ids if int(i) not in files]
    if missing:
        raise ValueError(
            f"{len(missing)} GalaxyIDs have no image in {images_dir}, e.g. "
            f"{missing[:5]}."
        )
    if not len(all_ids):
        raise ValueError(f"No galaxies to load from {images_dir}.")
    _check_clashes(clashes, [int(i) for i in all_ids], images_dir)
    X = _read_images([files[int(i)] for i in all_ids], images_dir, crop, size, n_jobs)
    return X, y, all_ids


def _read_template(template) -> tuple[list[str], np.ndarray]:
    template = Path(template)
    if not template.is_file():
        raise FileNotFoundError(f"Submission template not found: {template}")
    table = read_csv_table(template)
    columns = [str(c).strip() for c in table.columns]
    if not columns or columns[0] != _ID:
        raise ValueError(f"{template} must start with a {_ID} column.")
    _check_columns(columns, f"Submission template {template}")
    return columns[1:], _integer_ids(table.iloc[:, 0], template)


def _integer_ids(column, path) -> np.ndarray:
    """The GalaxyIDs of a table, refused unless integers and unique."""
    ids = pd.to_numeric(column, errors="coerce")
    if ids.isna().any() or (ids % 1 != 0).any():
        raise ValueError(f"{path}: {_ID} must hold integers.")
    if ids.duplicated().any():
        raise ValueError(
            f"{path}: duplicated {_ID}s, e.g. {ids[ids.duplicated()].head(3).tolist()}."
        )
    return ids.to_numpy(np.int64)


def write_galaxy_zoo_submission(y_pred, ids, path, *, template=None) -> Path:
    """Write predictions as a Galaxy Challenge submission file.

    The file has a ``GalaxyID`` column and the 37 answer columns. With a
    ``template`` (the competition's ``all_zeros_benchmark.csv``), columns are
    in the template's order and, when the template lists galaxies, rows are
    in its order and must cover exactly the same galaxies. The file is
    written to a temporary file first and then renamed, so an interrupted
    write never leaves a partial submission.

    Parameters
    ----------
    y_pred : DataFrame or array-like of shape (n_galaxies, 37)
        Predicted vote fractions. DataFrame columns are matched by name
        (``Class1.1`` ... ``Class11.6``, any order); arrays are in that order.
    ids : array-like of int, shape (n_galaxies,)
        The GalaxyIDs of the rows of ``y_pred``.
    path : str or path-like
        The CSV file to write.
    template : str or path-like, default=None
        A submission template whose header (and rows, if any) to follow.

    Returns
    -------
    path : pathlib.Path
        The written file.

    See Also
    --------
    load_galaxy_zoo : Load the images to predict.
    skestimators.galaxy_zoo.project_galaxy_zoo : Make predictions obey the tree.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from skestimators.datasets import write_galaxy_zoo_submission
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = write_galaxy_zoo_submission(
    ...         np.full((2, 37), 0.5), [100008, 100023], pathlib.Path(tmp) / "sub.csv"
    ...     )
    ...     print(out.read_text().splitlines()[1][:30])
    100008,0.500000,0.500000,0.500
    """
    if isinstance(y_pred, pd.DataFrame):
        _check_columns(list(y_pred.columns), "y_pred")
        if _ID in y_pred.columns:
            raise ValueError(f"y_pred has a {_ID} column; pass the ids separately.")
        values = y_pred[_COLUMNS].to_numpy(np.float64)
    else:
        values = np.asarray(y_pred, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(_COLUMNS):
        raise ValueError(
            f"y_pred must have shape (n_galaxies, {len(_COLUMNS)}), got {values.shape}."
        )
    if not np.isfinite(values).all():
        raise ValueError("y_pred contains NaN or infinite values.")
    ids = np.asarray(ids).ravel()
    if len(ids) != len(values):
        raise ValueError(f"{len(ids)} ids for {len(values)} rows of y_pred.")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids must be integers, got dtype {ids.dtype}.")
    if len(np.unique(ids)) != len(ids):
        raise ValueError("ids contain duplicates.")
    table = pd.DataFrame(values, columns=_COLUMNS)
    table.insert(0, _ID, ids.astype(np.int64))
    if template is not None:
        columns, template_ids = _read_template(template)
        table = table[[_ID, *columns]]
        if len(template_ids):
            order = pd.Index(table[_ID]).get_indexer(template_ids)
            extra = np.setdiff1d(table[_ID], template_ids)
            if (order < 0).any() or len(extra):
                raise ValueError(
                    f"ids differ from the template's: {int((order < 0).sum())} "
                    f"missing (e.g. {template_ids[order < 0][:3].tolist()}), "
                    f"{len(extra)} not in it (e.g. {extra[:3].tolist()})."
                )
            table = table.iloc[order]
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"Cannot write {path}: the folder {path.parent} does not exist."
        )
    # A temporary name opened as any new file (its mode follows the umask;
    # mkstemp's is 0600, unreadable by an upload job of another user).
    tmp = temporary_name(path, ".partial")
    try:
        with open(tmp, "w", newline="") as f:
            table.to_csv(f, index=False, float_format="%.6f")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _write_images(X: np.ndarray, ids: np.ndarray, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.clip(np.rint(X * 255), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    for galaxy_id, image in zip(ids, pixels):
        Image.fromarray(image).save(folder / f"{galaxy_id}.jpg", quality=92)


def write_galaxy_zoo_folder(
    path,
    n_samples: int = 20,
    *,
    n_test: int = 0,
    image_size: int = _KAGGLE_SIZE,
    n_volunteers: int = 40,
    random_state=None,
) -> Bunch:
    """Write simulated galaxies in the Kaggle Galaxy Challenge layout.

    Creates, under ``path``: ``images_training_rev1/<GalaxyID>.jpg``,
    ``training_solutions_rev1.csv``, ``images_test_rev1/<GalaxyID>.jpg``
    (when ``n_test > 0``) and ``all_zeros_benchmark.csv`` listing the test
    galaxies with the competition's columns. The training galaxies are those
    of :func:`make_galaxy_zoo` with the same ``random_state``, in the same
    order (their GalaxyIDs are drawn at random and sorted); their images
    show a field 424/207 times wider, so that ``load_galaxy_zoo``'s default
    crop recovers ``make_galaxy_zoo``'s field of view.

    Parameters
    ----------
    path : str or path-like
        Folder to write into (created if needed).
    n_samples : int, default=20
        Number of training galaxies.
    n_test : int, default=0
        Number of test galaxies (images without solutions).
    image_size : int, default=424
        Side of the JPEG images, in pixels.
    n_volunteers : int, default=40
        Volunteers per galaxy, see :func:`make_galaxy_zoo`.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    folder : Bunch
        ``images_dir``, ``solutions_csv``, ``test_images_dir`` and
        ``benchmark_csv`` (paths), ``ids`` and ``test_ids`` (GalaxyIDs) and
        ``y`` (the training vote fractions, a DataFrame).

    Examples
    --------
    >>> import tempfile
    >>> from skestimators.datasets import write_galaxy_zoo_folder
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = write_galaxy_zoo_folder(tmp, 2, n_test=1, random_state=0)
    ...     for entry in sorted(folder.images_dir.parent.iterdir()):
    ...         print(entry.name)
    all_zeros_benchmark.csv
    images_test_rev1
    images_training_rev1
    training_solutions_rev1.csv
    >>> folder.y.shape, len(folder.ids), len(folder.test_ids)
    ((2, 37), 2, 1)
    """
    n_samples = _check_int(n_samples, "n_samples", 1)
    n_test = _check_int(n_test, "n_test", 0)
    image_size = _check_int(image_size, "image_size", 8)
    n_volunteers = _check_int(n_volunteers, "n_volunteers", 1)
    path = Path(path)
    extent = _KAGGLE_SIZE / _KAGGLE_CROP
    morph, y, image_seed, id_seed = _simulate(n_samples, random_state, n_volunteers)
    X = _render(morph, image_size, extent, np.random.default_rng(image_seed))
    id_seed, test_seed = id_seed.spawn(2)
    all_ids = 100_000 + np.random.default_rng(id_seed).choice(
        900_000, n_samples + n_test, replace=False
    )
    ids, test_ids = np.sort(all_ids[:n_samples]), np.sort(all_ids[n_samples:])
    folder = Bunch(
        images_dir=path / "images_training_rev1",
        solutions_csv=path / "training_solutions_rev1.csv",
        test_images_dir=path / "images_test_rev1",
        benchmark_csv=path / "all_zeros_benchmark.csv",
        ids=ids,
        test_ids=test_ids,
        y=y,
    )
    _write_images(X, ids, folder.images_dir)
    solutions = y.copy()
    solutions.insert(0, _ID, ids)
    solutions.to_csv(folder.solutions_csv, index=False)
    if n_test:
        test_morph, _, test_image_seed, _ = _simulate(n_test, test_seed, n_volunteers)
        rng = np.random.default_rng(test_image_seed)
        X_test = _render(test_morph, image_size, extent, rng)
        _write_images(X_test, test_ids, folder.test_images_dir)
    benchmark = pd.DataFrame(0.0, index=range(n_test), columns=_COLUMNS)
    benchmark.insert(0, _ID, test_ids)
    benchmark.to_csv(folder.benchmark_csv, index=False)
    return folder
