"""Model files as pickles: writing, reading, and what a pickle may not be.

A pickle runs whatever code its author chose when it is loaded, so a file
that is (or is named as) a safe-format one is never unpickled: whoever can
replace a safe file and its sidecar cannot make ``load`` run their code.
Errors are raised as the caller's class (``ModelFileError``), as in
``_safe``.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import joblib

__all__ = [
    "is_safe_name",
    "main_references",
    "pickle_name",
    "unpickle",
    "write_pickle",
]


class _MainScanner(pickle.Pickler):
    """Pickles into nothing, collecting classes and functions from ``__main__``."""

    def __init__(self):
        super().__init__(_Sink(), protocol=5)
        self.found: set[str] = set()

    def persistent_id(self, obj):
        kind = obj if isinstance(obj, type) or callable(obj) else type(obj)
        if getattr(kind, "__module__", None) == "__main__":
            self.found.add(getattr(kind, "__qualname__", repr(kind)))
        return None


class _Sink:
    def write(self, data):
        return len(data)


def main_references(estimator) -> list[str]:
    """Names of the classes and functions of ``__main__`` that ``estimator``
    references: a pickle of it loads only where they are defined too."""
    scanner = _MainScanner()
    try:
        scanner.dump(estimator)
    except Exception:  # the real dump reports unpicklable objects
        return []
    return sorted(scanner.found)


def is_safe_name(path: Path) -> bool:
    """Whether the file's name says it is in the safe format: ``*.skops``."""
    return path.name.lower().endswith(".skops")


def pickle_name(path: Path) -> str:
    """A name to suggest for a pickle instead of ``path``'s ``.skops`` one."""
    return path.name[: -len(".skops")] + ".joblib"


def write_pickle(estimator, tmp: Path, error) -> None:
    """Pickle ``estimator`` to ``tmp``; ``error`` if it cannot be pickled."""
    try:
        joblib.dump(estimator, tmp)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise error(
            f"The model cannot be pickled: {type(exc).__name__}: {exc}"
        ) from exc


def unpickle(data: bytes, path, error):
    """Unpickle a model file, unless it is (or is named as) a safe-format one;
    ``error`` when it is, or when unpickling fails."""
    if data[:2] == b"PK":
        raise error(
            f"Refusing to unpickle {path}: it is a zip file (the safe format, "
            "skops), which is never unpickled. Its sidecar was altered or does "
            "not belong to it."
        )
    if is_safe_name(path):
        raise error(
            f"Refusing to unpickle {path}: a file named '.skops' is never "
            "unpickled, and it is not a skops file. If it is a pickle from a "
            "source you trust, rename it (and its sidecar, if any) to "
            f"{pickle_name(path)}."
        )
    try:
        return joblib.load(io.BytesIO(data))
    except Exception as exc:  # whatever the pickle raised, said in one line
        raise error(f"Cannot unpickle {path} ({type(exc).__name__}: {exc})") from exc
