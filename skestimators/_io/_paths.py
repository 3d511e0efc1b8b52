"""Where the pieces of a model file live: its sidecar, companion names that
fit a file name; and file hashes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ._atomic import cut_name

__all__ = [
    "NAME_MAX",
    "companion_name",
    "companion_path",
    "file_sha256",
    "sidecar_path",
]


#: Longest file name, in bytes, on the usual file systems (ext4, XFS, APFS).
NAME_MAX = 255


def companion_name(name: str, suffix: str) -> str:
    """``name + suffix``; when that passes ``NAME_MAX`` bytes, ``name`` cut
    (between characters) and followed by ``~`` and 8 hex digits of its
    SHA-256, so that two long names that start alike keep distinct
    companions, and a name always gets the same ones."""
    full = name + suffix
    if len(os.fsencode(full)) <= NAME_MAX:
        return full
    head = cut_name(name, NAME_MAX - len(os.fsencode(suffix)) - 9)
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:8]
    return f"{head}~{digest}{suffix}"


def companion_path(path, suffix: str) -> Path:
    """``<path><suffix>``, beside ``path``: a model's sidecar, an output's
    lock, parts folder, invalid-rows file.

    Where ``<path><suffix>`` would be too long for a file name (over
    ``NAME_MAX`` bytes), the name of ``path`` is shortened and followed by
    ``~`` and 8 hex digits of its hash: the same name always gets the same
    companion.

    Parameters
    ----------
    path : str or path-like
        The file the companion belongs to.
    suffix : str
        What the companion's name adds to the name of ``path``.

    Returns
    -------
    companion : pathlib.Path

    Examples
    --------
    >>> from skestimators._io import companion_path
    >>> companion_path("runs/scores.parquet", ".lock").as_posix()
    'runs/scores.parquet.lock'
    >>> name = companion_path("模" * 80 + ".parquet", ".invalid.csv").name
    >>> len(name.encode()) <= 255, name.endswith(".invalid.csv")
    (True, True)
    """
    path = Path(os.fspath(path))
    return path.with_name(companion_name(path.name, suffix))


def sidecar_path(path) -> Path:
    """The sidecar of a model file: ``<path>.json``.

    A model file whose name is too long to take ``.json`` (over 250 bytes)
    has a sidecar named as :func:`companion_path` shortens it.

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
    return companion_path(path, ".json")


def file_sha256(path) -> str:
    """SHA-256 of a file, read 1 MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
