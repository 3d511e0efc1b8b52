"""Trials left running by a search process that was killed.

A trial records the process evaluating it (``worker``: host and process id)
and when that process took it (``worker_since``). A search that finds, in a
persistent storage, a trial still running whose process on this machine has
ended resumes that trial in place: the same trial number and parameters,
evaluated again, so that its folds' checkpoints
(``checkpoint="runs/{params}-{data}"``) continue where they stopped and the
study holds the trials an uninterrupted search would. Trials of processes on
other machines are left to them (or to an ``RDBStorage`` with heartbeats,
which marks those of dead processes failed). One search process of a machine
at a time resumes a study's trials (a lock file in the temporary folder): two
searches started together would otherwise both train the same trial.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import tempfile
import time

import optuna
from filelock import FileLock, Timeout
from optuna.trial import TrialState

from .._io import process_alive

__all__ = ["claim_trial", "resume_stale_trials"]


def worker_name() -> str:
    """``host:pid`` of this process, as trials record it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claim_trial(trial) -> None:
    """Record this process as the one evaluating ``trial``, from now."""
    trial.set_user_attr("worker", worker_name())
    trial.set_user_attr("worker_since", time.time())


def _since(trial) -> float | None:
    """When the trial's process took it (seconds since the epoch): a process
    that resumed a trial started after the trial did."""
    since = trial.user_attrs.get("worker_since")
    if isinstance(since, (int, float)):
        return float(since)
    start = trial.datetime_start
    return None if start is None else start.timestamp()


def _started(pid):
    """When process ``pid`` started (seconds since the epoch), or None where
    ``/proc`` cannot tell (not Linux)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _ended(worker, since) -> bool:
    """Whether the process ``worker`` (``host:pid``), which took a trial at
    ``since`` (seconds since the epoch), has ended: only a process of this
    machine can be known to have; a process id used again by a later process
    counts as ended."""
    host, _, pid = str(worker).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    pid = int(pid)
    if not process_alive(pid):
        return True
    started = _started(pid)
    return started is not None and since is not None and started > since + 1


def _stale(study):
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if _ended(t.user_attrs.get("worker"), _since(t))
    ]


def lock_path(study) -> str:
    """The machine's lock file for resuming the trials of ``study``: named by
    the study's name and the start of its first trial, which tell apart
    studies of one name in different storages."""
    trials = study.get_trials(deepcopy=False)
    first = min((t.number, str(t.datetime_start)) for t in trials)[1] if trials else ""
    key = hashlib.sha256(f"{study.study_name}\0{first}".encode()).hexdigest()
    return os.path.join(tempfile.gettempdir(), f"skestimators-study-{key[:24]}.lock")


@contextlib.contextmanager
def _resuming(study):
    """Whether this process may resume the study's trials: False while
    another process of this machine is resuming them."""
    try:
        lock = FileLock(lock_path(study), timeout=0)
        lock.acquire()
    except Timeout:
        yield False
        return
    except OSError:  # no lock here (a read-only temporary folder)
        yield True
        return
    try:
        yield True
    finally:
        lock.release()


def resume_stale_trials(study, objective) -> int:
    """Evaluate again, in place, the trials left running by ended processes
    of this machine; return how many (none while another process of this
    machine resumes them)."""
    resumed = 0
    with _resuming(study) as allowed:
        while allowed and (stale := _stale(study)):  # read again after each
            # The trial's own id: Optuna has no public way to take over a
            # running trial (``Study.ask`` only starts new ones).
            objective(study, optuna.trial.Trial(study, stale[0]._trial_id))
            resumed += 1
    return resumed
