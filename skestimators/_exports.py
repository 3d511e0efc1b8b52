"""Lazy attributes for package ``__init__`` files (PEP 562).

A package front that re-exports names from modules which import PyTorch
(every network, the training engine) would import PyTorch as soon as the
package is imported, whatever the user needs from it. Instead, such a front
declares where each name lives and imports the module on first access::

    __getattr__, __dir__ = lazy_exports(__name__, {"NetClassifier": ".estimators"})

``from skestimators import NetClassifier``, ``skestimators.NetClassifier``,
``dir()``, tab completion and ``from ... import *`` (through ``__all__``)
all work as for an eager import; the value is cached in the package after the
first access.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str,
    exports: Mapping[str, str],
    submodules: Iterable[str] = (),
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` that import on first access.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : mapping of str to str
        Each name to the module, relative to ``package`` (``"._io"``), that
        defines it.
    submodules : iterable of str, default=()
        Subpackages and modules (``"metrics"``) reachable as attributes of
        the package without an explicit import, as after ``import
        package.metrics``.

    Returns
    -------
    __getattr__, __dir__ : callable
        To assign to the package's module-level names of the same name.
    """
    exports = dict(exports)
    submodules = frozenset(submodules)

    def __getattr__(name: str):
        if name in exports:
            value = getattr(importlib.import_module(exports[name], package), name)
        elif name in submodules:
            value = importlib.import_module(f".{name}", package)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)  # later lookups skip this
        return value

    def __dir__() -> list[str]:
        module = sys.modules[package]
        public = getattr(module, "__all__", ())
        return sorted({*vars(module), *public, *submodules})

    return __getattr__, __dir__
