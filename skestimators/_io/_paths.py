"""Where the pieces of a model file live: its sidecar; and file hashes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["file_sha256", "sidecar_path"]


def sidecar_path(path) -> Path:
    """The sidecar of a model file: ``<path>.json``.

    Parameters
    ----------
    path : str or path-like
        The model file.

    Returns
    -------
    sidecar : pathlib.Path
        ``<path>.json``.

    Examples
    --------
    >>> from skestimators._io import sidecar_path
    >>> sidecar_path("models/clf.joblib").as_posix()
    'models/clf.joblib.json'
    """
    path = Path(os.fspath(path))
    return path.with_name(path.name + ".json")


def file_sha256(path) -> str:
    """SHA-256 of a file, read 1 MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
