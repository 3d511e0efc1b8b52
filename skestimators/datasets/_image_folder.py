"""Labelled image folders: a folder of images and a CSV of id and class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ._galaxy_sim import _check_int
from ._images import _IMAGE_SUFFIXES, _check_clashes, _files_by_id, _read_images
from ._tables import read_csv_table

__all__ = ["load_image_folder"]


def load_image_folder(
    images_dir,
    labels_csv,
    *,
    id_column=None,
    label_column=None,
    size: int | None = 69,
    crop: int | None = 207,
    n_jobs: int | None = None,
):
    """Load a folder of labelled images: ``<id>.jpg`` files and a CSV of classes.

    The layout of Galaxy Zoo 1 class catalogues [1]_ and of many image data
    sets: one image per object, named by its id (``<id>.jpg``, ``.jpeg``,
    ``.png``, ``.tif`` or ``.tiff``), and a CSV file with a row per object
    giving its id and its class. Images are read, centre-cropped and resized
    as by :func:`load_galaxy_zoo` (after the turn or mirror flip of their EXIF
    orientation), in the order of the CSV rows. Pixels are
    scaled to [0, 1]: 8-bit images by 255, 16-bit greyscale images by 65535
    (their three channels equal); images of 32-bit or floating-point pixels
    are refused, as they have no fixed range.

    Parameters
    ----------
    images_dir : str or path-like
        Folder of ``<id>.jpg`` images; other files are ignored.
    labels_csv : str or path-like
        CSV file with a header, one row per image.
    id_column : str, default=None
        Column of the ids (the image file names without suffix); None: the
        first column.
    label_column : str, default=None
        Column of the classes (class names are stripped of surrounding
        spaces, as the ids and the header are); None: the second column.
        With class codes (integers) a mirror-image pair of classes is named
        by its codes in :class:`~skestimators.ImageClassifier`'s
        ``chirality_pairs``; with
        class names (e.g. ``label_column="class_name"`` of a Galaxy Zoo 1
        catalogue) the default pair ``("clockwise_spiral",
        "anticlockwise_spiral")`` matches them.
    size : int or None, default=69
        Side of the returned images; None keeps the cropped size. With
        ``crop=None`` the images must then be square: resizing others to a
        square would stretch them (a ValueError suggests
        ``crop=min(width, height)``, their centre square).
    crop : int or None, default=207
        Side of the centre crop, before resizing; None keeps whole images.
    n_jobs : int, default=None
        Threads decoding images (``-1``: all cores), via joblib.

    Returns
    -------
    X : ndarray of shape (n_images, 3, size, size), dtype float32
        RGB images in [0, 1], channels first.
    y : ndarray of shape (n_images,)
        The classes, row ``i`` belonging to ``X[i]``.
    ids : ndarray of shape (n_images,)
        The ids, in the order of the CSV file, as pandas reads them
        (integers for numeric ids), or as written (strings) where reading
        them as numbers would change them (leading zeros: ``007.jpg``).

    Raises
    ------
    FileNotFoundError
        If the folder or the CSV file does not exist.
    ValueError
        If the CSV file is not UTF-8 text, a column is missing, an id is
        duplicated, has no image or names two (``1.jpg`` and ``1.png``), a
        class is missing, or an image cannot be read (corrupt, or larger than
        Pillow's ``MAX_IMAGE_PIXELS``), is smaller than ``crop``, or is not
        square while ``size`` is set and ``crop`` is None.

    See Also
    --------
    load_galaxy_zoo : The Galaxy Challenge layout (37 vote fractions).

    References
    ----------
    .. [1] C. Lintott et al., "Galaxy Zoo 1: data release of morphological
       classifications for nearly 900 000 galaxies", MNRAS 410, 166-178,
       2011.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skestimators.datasets import load_image_folder
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = pathlib.Path(tmp)
    ...     for i in (11, 12):
    ...         Image.new("RGB", (40, 40)).save(folder / f"{i}.jpg")
    ...     _ = (folder / "classes.csv").write_text("objid,class\\n12,1\\n11,0\\n")
    ...     X, y, ids = load_image_folder(folder, folder / "classes.csv",
    ...                                   crop=None, size=20)
    >>> X.shape, y.tolist(), ids.tolist()
    ((2, 3, 20, 20), [1, 0], [12, 11])
    """
    images_dir, labels_csv = Path(images_dir), Path(labels_csv)
    if not images_dir.is_dir():
        raise FileNotFoundError(f"Image folder not found: {images_dir}")
    if not labels_csv.is_file():
        raise FileNotFoundError(f"Labels file not found: {labels_csv}")
    crop = None if crop is None else _check_int(crop, "crop", 1)
    size = None if size is None else _check_int(size, "size", 1)
    table = read_csv_table(labels_csv)
    table.columns = [str(c).strip() for c in table.columns]
    if table.shape[1] < 2 and (id_column is None or label_column is None):
        raise ValueError(
            f"{labels_csv} must have an id and a class column; it has the "
            f"columns {list(table.columns)}."
        )
    id_column = table.columns[0] if id_column is None else id_column
    label_column = table.columns[1] if label_column is None else label_column
    for what, column in (("id_column", id_column), ("label_column", label_column)):
        if column not in table.columns:
            raise ValueError(
                f"{what}={column!r} is not a column of {labels_csv}; its columns "
                f"are {list(table.columns)}."
            )
    ids, y = table[id_column], table[label_column]
    if pd.api.types.is_string_dtype(y.dtype):  # "a, b" CSVs: " b" is "b"
        y = y.str.strip().replace("", np.nan)  # a blank class is missing
    # Ids name files: read as written ("007" is not 7), returned as pandas
    # reads them unless that changes them.
    written = read_csv_table(labels_csv, dtype=str).iloc[
        :, table.columns.get_loc(id_column)
    ]
    written = written.str.strip()
    if ids.isna().any() or written.duplicated().any():
        raise ValueError(
            f"{labels_csv}: the ids ({id_column!r}) must be present and unique; "
            f"e.g. {ids[ids.duplicated() | ids.isna()].head(3).tolist()}."
        )
    if y.isna().any():
        raise ValueError(
            f"{labels_csv}: {int(y.isna().sum())} rows have no class "
            f"({label_column!r})."
        )
    files, clashes = _files_by_id(images_dir, _IMAGE_SUFFIXES, lambda p: p.stem)
    keys = written.tolist()
    if keys != [str(i) for i in ids]:
        ids = written
    missing = [k for k in keys if k not in files]
    if missing:
        raise ValueError(
            f"{len(missing)} ids of {labels_csv} have no image in {images_dir} "
            f"(<id>.jpg), e.g. {missing[:5]}."
        )
    if not keys:
        raise ValueError(f"{labels_csv} lists no images.")
    _check_clashes(clashes, keys, images_dir)
    X = _read_images([files[k] for k in keys], images_dir, crop, size, n_jobs)
    return X, y.to_numpy(), ids.to_numpy()
