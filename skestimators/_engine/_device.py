"""Device resolution, mixed precision and torch thread budgets."""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
import warnings

import torch

from ._validation import caller_stacklevel

_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device) -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a device into a device.

    ``"auto"`` picks CUDA when it is available and the CPU otherwise. Asking for
    CUDA on a machine without it is an error rather than a silent fallback, so
    that a GPU job never runs for hours on the CPU by accident.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        # torch's message lists some twenty backends (ipu, xpu, opengl...).
        raise ValueError(
            f"device={device!r} is not a device: give 'cpu', 'cuda', 'cuda:1', "
            "'mps' or 'auto' (lower case)."
        ) from None
    if resolved.type not in ("cpu", "cuda", "mps"):
        # "meta", "xla"... passed here and failed in fit on CUDA-only calls.
        raise ValueError(
            f"device={device!r}: the estimators train on 'cpu', 'cuda' (or "
            f"'cuda:N') and 'mps', not on {resolved.type!r} devices."
        )
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available on this "
            "machine; use device='auto' or 'cpu'."
        )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r} was requested but MPS is not available.")
    return resolved


def amp_dtype(amp, device: torch.device):
    """The autocast dtype for ``amp`` on ``device``, or None for full precision."""
    if amp is None or amp is False:
        return None
    if amp not in _AMP_DTYPES:
        raise ValueError(f"amp must be None, 'bf16' or 'fp16', got {amp!r}.")
    if device.type == "cpu" and amp == "fp16":
        warnings.warn(
            "amp='fp16' is not supported on the CPU; training in float32. "
            "Use amp='bf16' for mixed precision on the CPU.",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )
        return None
    if device.type == "cpu" and amp == "bf16" and not _cpu_has_bfloat16():
        warnings.warn(
            "amp='bf16' needs a CPU on which oneDNN runs bfloat16 natively "
            "(AVX-512 or AMX), which this one is not: the network runs in "
            "float32 here (emulated bfloat16 is slower, and oneDNN has no "
            "bfloat16 LSTM on it).",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )
        return None
    return _AMP_DTYPES[amp]


def _cpu_has_bfloat16() -> bool:
    """Whether oneDNN runs bfloat16 natively on this CPU (assumed where unknown)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return True


def rng_devices(device: torch.device) -> list[int]:
    """The CUDA devices whose random state a seeded block must restore.

    ``torch.manual_seed`` reseeds every CUDA device, not only ``device``:
    all of them are forked, so that a seeded fit or Monte Carlo run leaves
    the streams of the other GPUs as they were. Off CUDA, none.
    """
    if device.type != "cuda":
        return []
    return list(range(torch.cuda.device_count()))


def autocast(device: torch.device, dtype):
    """An autocast context for ``dtype`` on ``device`` (a no-op when dtype is None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _running_elsewhere() -> int | None:
    """Runnable threads of other processes now (Linux), or None where unknown.

    ``/proc/loadavg`` counts the machine's runnable threads; this process's
    own runnable threads (``/proc/self/task/*/stat``) are subtracted.
    """
    try:
        with open("/proc/loadavg") as f:
            total = int(f.read().split()[3].split("/")[0])
        own = 0
        for task in os.scandir("/proc/self/task"):
            try:
                with open(f"{task.path}/stat") as f:
                    own += f.read().rpartition(")")[2].split()[0] == "R"
            except OSError:  # the thread ended meanwhile
                continue
    except (OSError, ValueError, IndexError):
        return None
    return max(total - own, 0)


#: Seconds for which a reading of the machine's load is reused: sampling it
#: takes milliseconds (more with many threads), which a call of ``predict`` on
#: a GPU, or a short epoch, would otherwise spend each time.
BUSY_CORES_TTL = 0.5
_BUSY = {"at": -math.inf, "value": None}
_BUSY_LOCK = threading.Lock()


def busy_cores(samples: int = 3) -> int | None:
    """Cores kept busy by other processes: the median of a few samples, 1 ms apart.

    A reading younger than :data:`BUSY_CORES_TTL` seconds is reused.
    """
    with _BUSY_LOCK:
        if time.monotonic() - _BUSY["at"] < BUSY_CORES_TTL:
            return _BUSY["value"]
    values = []
    for i in range(samples):
        value = _running_elsewhere()
        if value is None:
            break
        values.append(value)
        if i < samples - 1:
            time.sleep(0.001)
    busy = sorted(values)[len(values) // 2] if len(values) == samples else None
    with _BUSY_LOCK:
        _BUSY.update(at=time.monotonic(), value=busy)
    return busy


_OPENMP = {}
_OPENMP_LOCK = threading.Lock()


def _after_fork_in_child():
    """A forked child takes fresh locks (another thread of the parent may have
    held one) and its own reading of the load."""
    global _BUSY_LOCK, _OPENMP_LOCK
    _BUSY_LOCK, _OPENMP_LOCK = threading.Lock(), threading.Lock()
    _BUSY["at"] = -math.inf


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _openmp_thread_limits() -> list[int]:
    """The thread limits of the OpenMP runtimes that this process has loaded.

    threadpoolctl finds the runtimes by scanning the loaded libraries, which
    takes milliseconds (tens with CUDA's libraries loaded); that is done once,
    the first time, and the limits, which a parallel backend may change at
    any time, are read live each call (microseconds). An OpenMP runtime
    loaded later than that first call is not seen; torch's own is loaded
    with torch.
    """
    with _OPENMP_LOCK:
        if "controller" not in _OPENMP:
            from threadpoolctl import ThreadpoolController

            _OPENMP["controller"] = ThreadpoolController().select(user_api="openmp")
    return [lib.num_threads for lib in _OPENMP["controller"].lib_controllers]


def _explicit_budget() -> int | None:
    """A thread limit set by the user or a parallel backend, or None."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(name)
        if value:
            try:
                return max(int(value), 1)
            except ValueError:
                continue
    try:
        limits = _openmp_thread_limits()
    except ImportError:  # pragma: no cover - threadpoolctl ships with sklearn
        return None
    limits = [n for n in limits if n != _DEFAULT["ours"]]
    cores = os.cpu_count() or 1
    if limits and min(limits) < cores:
        return min(limits)
    return None


def thread_budget() -> int | None:
    """The number of torch threads this process may use, or None for torch's default.

    An explicit limit wins: joblib's loky backend and Dask's nanny export
    ``OMP_NUM_THREADS`` (and the MKL/OpenBLAS equivalents) to their workers
    so that ``n_jobs`` workers share the cores, and a user may set it. torch
    reads that variable only when its thread pool starts, and a process that
    imported torch before the variable was set would keep using every core;
    reading the variable here makes every fit and predict follow it.

    Without one, the budget is the cores that other processes leave free
    (at least one). OpenMP threads wait for each other at the end of every
    parallel operation, spinning: on cores that other processes also want,
    each wait lasts until the descheduled thread gets the core back, and a
    network's many small operations make training tens of times slower than
    a fair share of the machine (``python benchmarks/contention.py``). On a
    machine that is otherwise idle the budget is torch's default.
    """
    explicit = _explicit_budget()
    if explicit is not None:
        return explicit
    busy = busy_cores()
    if not busy:
        return None
    return max(_cores() - busy, 1)


# depth: nested torch_threads blocks; threads: the count before the outermost;
# ours: the count this package set, which torch's OpenMP runtime then reports
# as its limit and _explicit_budget must not take for the user's.
_DEFAULT = {"depth": 0, "threads": None, "ours": None}


def _set_torch_threads(n: int, ours: bool = True) -> None:
    torch.set_num_threads(n)
    _DEFAULT["ours"] = n if ours else None


@contextlib.contextmanager
def torch_threads(n_threads: int | None = None):
    """Run the block with ``n_threads`` torch threads (default: ``thread_budget()``).

    The previous setting is restored afterwards so that the library never
    changes global state behind the user's back. Inside the block,
    :func:`follow_thread_budget` adapts the count to the machine's load.
    """
    wanted = n_threads if n_threads is not None else thread_budget()
    previous = torch.get_num_threads()
    _DEFAULT["depth"] += 1
    if _DEFAULT["depth"] == 1:
        _DEFAULT["threads"] = previous
    try:
        if wanted is not None and wanted != previous:
            _set_torch_threads(wanted)
        yield
    finally:
        _DEFAULT["depth"] -= 1
        if torch.get_num_threads() != previous:
            _set_torch_threads(previous, ours=_DEFAULT["depth"] > 0)
        if _DEFAULT["depth"] == 0:
            _DEFAULT["ours"] = None


def follow_thread_budget() -> None:
    """Inside :func:`torch_threads`, set the torch threads to the current budget.

    Called by the engine at the start of every epoch, so that a fit slows to
    its share of the cores, rather than spinning, when other jobs start
    beside it, and takes the cores back when they end.
    """
    if _DEFAULT["depth"] == 0:
        return
    wanted = thread_budget() or _DEFAULT["threads"]
    if wanted and wanted != torch.get_num_threads():
        _set_torch_threads(wanted)


@contextlib.contextmanager
def openmp_threads():
    """Run the block with OpenMP threads limited to :func:`thread_budget`.

    For the scikit-learn estimators the package fits itself (the gradient
    boosting member of a soft vote): their OpenMP threads spin on busy cores
    as torch's do. A scoped ``threadpoolctl`` limit, restored afterwards;
    nothing changes on an idle machine.
    """
    budget = thread_budget()
    if budget is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=budget, user_api="openmp"):
        yield
