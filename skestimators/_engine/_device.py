"""Device resolution, mixed precision and torch thread budgets."""

from __future__ import annotations

import contextlib
import os
import warnings

import torch

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
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"Unknown device {device!r}: {exc}") from None
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
            stacklevel=3,
        )
        return None
    return _AMP_DTYPES[amp]


def autocast(device: torch.device, dtype):
    """An autocast context for ``dtype`` on ``device`` (a no-op when dtype is None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def thread_budget() -> int | None:
    """The number of torch threads this process may use, or None for torch's default.

    joblib's loky backend and Dask's nanny export ``OMP_NUM_THREADS`` (and the
    MKL/OpenBLAS equivalents) to their workers so that ``n_jobs`` workers share
    the cores. torch reads that variable only when its thread pool starts, and
    a process that imported torch before the variable was set would keep using
    every core. Reading the variable here makes every fit and predict follow it.
    """
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(name)
        if value:
            try:
                return max(int(value), 1)
            except ValueError:
                continue
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - threadpoolctl ships with sklearn
        return None
    limits = [
        info["num_threads"]
        for info in threadpool_info()
        if info.get("user_api") == "openmp"
    ]
    cores = os.cpu_count() or 1
    if limits and min(limits) < cores:
        return min(limits)
    return None


@contextlib.contextmanager
def torch_threads(n_threads: int | None = None):
    """Run the block with ``n_threads`` torch threads (default: ``thread_budget()``).

    The previous setting is restored afterwards so that the library never
    changes global state behind the user's back.
    """
    wanted = n_threads if n_threads is not None else thread_budget()
    previous = torch.get_num_threads()
    if wanted is None or wanted == previous:
        yield
        return
    torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
