"""One writer per output: an exclusive lock on ``<OUT>.lock`` for a whole run.

The lock is an ``flock`` taken through :mod:`filelock` on ``<OUT>.lock``; the
kernel drops it when the process ends, however it ends, so a killed run never
leaves a stale lock. The holder writes its pid and start time to
``<OUT>.lock.owner`` so that a second run can say who holds the output. The
empty ``<OUT>.lock`` file is left in place (removing it would let two runs
lock two different files of the same name). For an output whose name is too
long to take these suffixes, both names are shortened with a hash of the
output's name (see :func:`companion_path`). Scoring runs and the training
command take it.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock, Timeout

from ._atomic import remove_stale_temporaries, temporary_name
from ._paths import companion_path

__all__ = ["OutputLockedError", "output_lock"]

#: How long a run that found the output locked waits for the owner file.
_OWNER_WAIT = 1.0


class OutputLockedError(RuntimeError):
    """Another run holds the lock on the output.

    Raised at once, before anything is read or written; the other run's parts
    and output are left as they are.

    Examples
    --------
    >>> from skestimators.scoring import OutputLockedError
    >>> issubclass(OutputLockedError, RuntimeError)
    True
    """


def lock_path(output: Path) -> Path:
    """``<OUT>.lock``, beside the output."""
    return companion_path(output, ".lock")


def _owner_path(output: Path) -> Path:
    return companion_path(output, ".lock.owner")


def _read_owner(path: Path) -> dict | None:
    deadline = time.monotonic() + _OWNER_WAIT
    while True:
        try:
            owner = json.loads(path.read_text())
            if isinstance(owner, dict) and "pid" in owner:
                return owner
        except (OSError, ValueError):
            pass  # not written yet by the holder, or being written
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


@contextmanager
def output_lock(output):
    """Hold the lock on ``output`` for the ``with`` block.

    Raises
    ------
    OutputLockedError
        If another run holds it: ``"another run (pid N, started T) is
        writing OUTPUT"``.
    """
    output = Path(output)
    if not output.parent.is_dir():
        raise FileNotFoundError(f"Output folder {output.parent} does not exist.")
    lock = FileLock(str(lock_path(output)), timeout=0)
    owner_path = _owner_path(output)
    try:
        lock.acquire()
    except Timeout:
        owner = _read_owner(owner_path) or {}
        raise OutputLockedError(
            f"another run (pid {owner.get('pid', 'unknown')}, started "
            f"{owner.get('started', 'at an unknown time')}) is writing {output}"
        ) from None
    try:
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        remove_stale_temporaries(owner_path)  # of runs killed while writing it
        tmp = temporary_name(owner_path)
        try:
            tmp.write_text(json.dumps({"pid": os.getpid(), "started": started}))
            os.replace(tmp, owner_path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        yield
    finally:
        owner_path.unlink(missing_ok=True)
        lock.release()
