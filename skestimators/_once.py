"""Warnings given once per call of a function that predicts in pieces.

:func:`~skestimators.mapping.predict_raster` predicts a map chunk by chunk, and
a model that warns of something in its input (gaps its network never learned
to read) would warn once per chunk: Python's "default" filter does not
deduplicate reliably, since any ``warnings.catch_warnings`` block resets its
registry. Inside :func:`once_per_call`, the sites that ask :func:`first_time`
warn of each message once. The record is a context variable, so maps predicted
at the same time in other threads keep their own (``warnings.catch_warnings``,
which would intercept the warnings, swaps process-wide state).
"""

from __future__ import annotations

import contextlib
import contextvars

__all__ = ["first_time", "once_per_call"]

_SEEN: contextvars.ContextVar[set | None] = contextvars.ContextVar(
    "skestimators_warned", default=None
)


@contextlib.contextmanager
def once_per_call():
    """Within the block, :func:`first_time` is true once per message."""
    token = _SEEN.set(set())
    try:
        yield
    finally:
        _SEEN.reset(token)


def first_time(message: str) -> bool:
    """Whether to warn of ``message``: always outside :func:`once_per_call`,
    the first time only within it."""
    seen = _SEEN.get()
    if seen is None:
        return True
    if message in seen:
        return False
    seen.add(message)
    return True
