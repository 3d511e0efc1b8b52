"""Trials left running by a search process that was killed.

A trial records the process evaluating it (``worker``: host and process id)
when it starts. A search that finds, in a persistent storage, a trial still
running whose process on this machine has ended resumes that trial in place:
the same trial number and parameters, evaluated again, so that its folds'
checkpoints (``checkpoint="runs/{params}-{data}"``) continue where they
stopped and the study holds the trials an uninterrupted search would. Trials
of processes on other machines are left to them (or to an ``RDBStorage``
with heartbeats, which marks those of dead processes failed).
"""

from __future__ import annotations

import os
import socket

import optuna
from optuna.trial import TrialState

from .._io import process_alive

__all__ = ["resume_stale_trials", "worker_name"]


def worker_name() -> str:
    """``host:pid`` of this process, as trials record it."""
    return f"{socket.gethostname()}:{os.getpid()}"


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
    """Whether the process ``worker`` (``host:pid``), which started a trial
    at ``since``, has ended: only a process of this machine can be known to
    have; a process id used again by a later process counts as ended."""
    host, _, pid = str(worker).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    pid = int(pid)
    if not process_alive(pid):
        return True
    started = _started(pid)
    return started is not None and since is not None and started > since.timestamp() + 1


def resume_stale_trials(study, objective) -> int:
    """Evaluate again, in place, the trials left running by ended processes
    of this machine; return how many."""
    stale = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if _ended(t.user_attrs.get("worker"), t.datetime_start)
    ]
    for frozen in stale:
        # The trial's own id: Optuna has no public way to take over a running
        # trial (``Study.ask`` only starts new ones).
        objective(study, optuna.trial.Trial(study, frozen._trial_id))
    return len(stale)
