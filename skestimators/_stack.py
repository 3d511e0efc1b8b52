"""Where a warning points: the user's call, past the library's own frames.

Light (no torch): the scoring command line and the engine both use it.
"""

from __future__ import annotations

import sys

__all__ = ["caller_stacklevel"]

#: Modules whose frames a warning looks past: skestimators' own, and the
#: libraries that call back into it (scikit-learn's meta-estimators, optuna's
#: objective of a search, joblib's sequential backend).
_LIBRARY_FRAMES = ("skestimators.", "sklearn.", "optuna.", "joblib.")


def caller_stacklevel():
    """The ``stacklevel`` at which a warning issued by the calling function
    points at the first frame outside skestimators and the libraries that
    call it (:data:`_LIBRARY_FRAMES`): the user's call (``fit``, ``predict``,
    a Pipeline's or a search's, however deep the frames between)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith(
        _LIBRARY_FRAMES
    ):
        frame, level = frame.f_back, level + 1
    return level
