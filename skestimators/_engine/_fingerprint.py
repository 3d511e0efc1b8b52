"""Fingerprints of a fit: what its parameters compute, and its training data.

A checkpoint records both; ``fit`` resumes only from a checkpoint with the
same ones. Parameter values become stable texts without memory addresses
(:func:`config_fingerprint`); the training inputs, targets, weights and
groups become SHA-256 digests (:func:`data_fingerprint`), read from disk in
chunks for memory-mapped inputs.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np
import torch

from ._batching import SparseRows
from ._config import NON_COMPUTING_PARAMS
from ._lazy import LazyRows

__all__ = ["callbacks_fingerprint", "config_fingerprint", "data_fingerprint"]

_HASH_CHUNK = 1 << 24  # bytes hashed at a time from files on disk
_MAX_TEXT = 200  # longer texts of callback parameters: described by their type


def _canonical(value, depth=0):
    """A stable text for a parameter value (no memory addresses).

    Values without a meaningful text of their own are described by what
    they compute: a ``functools.partial`` by its function and arguments, a
    lambda or local function by a digest of its code, defaults and closure,
    a network instance by its architecture and a digest of its weights, any
    other object by its type and attributes.
    """
    if depth > 8:  # deeply nested values: their type is enough
        return type(value).__qualname__
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, functools.partial):
        return (
            f"partial({_canonical(value.func, depth + 1)}, "
            f"{_canonical(list(value.args), depth + 1)}, "
            f"{_canonical(dict(value.keywords), depth + 1)})"
        )
    if isinstance(value, torch.nn.Module):
        return f"{value!r} weights {_digest(dict(value.state_dict()))}"
    if isinstance(value, torch.Tensor):
        return f"tensor {_digest(value)}"
    if isinstance(value, np.ndarray):
        return f"array {value.dtype} {value.shape} {_digest(value)}"
    if isinstance(value, np.generic):  # lr=np.float64(1e-3) is lr=1e-3
        return repr(value.item())
    if isinstance(value, dict):
        items = sorted(value, key=repr)
        return (
            "{"
            + ", ".join(f"{k!r}: {_canonical(value[k], depth + 1)}" for k in items)
            + "}"
        )
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_canonical(v, depth + 1) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, np.random.RandomState):
        return "RandomState instance"
    if callable(value) and hasattr(value, "__qualname__"):
        name = f"{getattr(value, '__module__', '')}.{value.__qualname__}"
        if "<lambda>" in name or "<locals>" in name:  # no name to tell them apart
            name += f" {_function_digest(value, depth)}"
        return name
    text = repr(value)
    if " at 0x" in text:  # an object without a meaningful repr
        attributes = getattr(value, "__dict__", None)
        name = f"{type(value).__module__}.{type(value).__qualname__}"
        if attributes:
            return f"{name}({_canonical(dict(attributes), depth + 1)})"
        return name
    return text


def _function_digest(function, depth):
    """A digest of what a lambda or local function computes."""
    h = hashlib.sha256()
    code = getattr(function, "__code__", None)
    if code is not None:
        _hash_code(h, code)
    h.update(_canonical(getattr(function, "__defaults__", None), depth + 1).encode())
    h.update(_canonical(getattr(function, "__kwdefaults__", None), depth + 1).encode())
    for cell in getattr(function, "__closure__", None) or ():
        try:
            h.update(_canonical(cell.cell_contents, depth + 1).encode())
        except ValueError:  # an empty cell
            h.update(b"<empty>")
    return f"code {h.hexdigest()[:16]}"


def _hash_code(h, code):
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if hasattr(const, "co_code"):  # a nested function's code
            _hash_code(h, const)
        else:
            h.update(repr(const).encode())


def config_fingerprint(params):
    """``{name: text}`` of the parameters that change what a fit computes."""
    return {
        k: _canonical(v)
        for k, v in sorted(params.items())
        if k not in NON_COMPUTING_PARAMS
    }


#: skorch's callbacks that only watch a fit (progress, logs, files).
_SKORCH_WATCHERS = (
    "EpochTimer", "PrintLog", "ProgressBar", "Checkpoint", "TrainEndCheckpoint",
    "TensorBoard", "MlflowLogger", "WandbLogger", "NeptuneLogger", "SacredLogger",
)  # fmt: skip


def _watches_only(callback):
    """Whether ``callback`` only watches a fit: skorch's loggers and progress
    bars, and the package's own (which set ``_watches_only``)."""
    import skorch.callbacks

    if getattr(callback, "_watches_only", False):
        return True
    watchers = tuple(getattr(skorch.callbacks, n, ()) for n in _SKORCH_WATCHERS)
    return isinstance(callback, tuple(w for w in watchers if isinstance(w, type)))


def _plain_text(value, depth=0):
    """A stable text of a callback parameter: plain values in full,
    scikit-learn-style objects by their parameters, objects with a short text
    of their own (a compiled pattern, a path) by it, others by their type (a
    client or an open file would make every fit another)."""
    if value is None or isinstance(value, (bool, int, float, str, np.generic)):
        return repr(value.item() if isinstance(value, np.generic) else value)
    if depth < 4 and isinstance(value, (list, tuple)):
        return "[" + ", ".join(_plain_text(v, depth + 1) for v in value) + "]"
    if depth < 4 and isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: repr(kv[0]))
        return (
            "{"
            + ", ".join(f"{k!r}: {_plain_text(v, depth + 1)}" for k, v in items)
            + "}"
        )
    if isinstance(value, (type, functools.partial)) or (
        callable(value) and hasattr(value, "__qualname__")
    ):  # classes and functions by name, lambdas by code, partials with arguments
        return _canonical(value)
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    if depth < 4 and callable(getattr(value, "get_params", None)):
        try:  # a scikit-learn-style object: its class and parameters
            params = value.get_params(deep=False)
        except Exception:  # noqa: BLE001 - any failure: described by its type
            params = None
        if isinstance(params, dict):
            shown = ", ".join(
                f"{k}={_plain_text(v, depth + 1)}" for k, v in sorted(params.items())
            )
            return f"{kind}({shown})"
    text = repr(value)  # a value with a text of its own (a pattern, a path)
    if len(text) <= _MAX_TEXT and " at 0x" not in text:
        return text
    return kind


def callbacks_fingerprint(callbacks):
    """Texts of the user's callbacks that may change what a fit computes:
    each one's name, class and parameters (watchers left out).

    Not part of :func:`config_fingerprint` (a resume with other callbacks is
    the user's call), but of the ``{params}`` digest of a checkpoint
    directory, where a search's candidates may differ only in a callback.
    """
    texts = []
    for item in callbacks or ():
        name, callback = item if isinstance(item, (tuple, list)) else (None, item)
        if _watches_only(callback):
            continue
        kind = type(callback)
        try:
            params = callback.get_params(deep=False)
        except (AttributeError, TypeError):  # not a scikit-learn-style callback
            params = {}
        shown = ", ".join(f"{k}={_plain_text(v)}" for k, v in sorted(params.items()))
        texts.append(
            f"{name or kind.__name__}: {kind.__module__}.{kind.__qualname__}({shown})"
        )
    return texts


def _hash_tensor(h, t):
    if isinstance(t, LazyRows):  # on disk: hash the file's rows in chunks
        if t.index is not None:
            h.update(np.ascontiguousarray(t.index).tobytes())
        h.update(str((t.array.dtype, t.array.shape)).encode())
        flat = t.array.reshape(len(t.array), -1)
        step = max(1, _HASH_CHUNK // max(1, flat.strides[0]))
        for start in range(0, len(flat), step):
            h.update(np.ascontiguousarray(flat[start : start + step]))
        return
    if isinstance(t, SparseRows):  # the stored values and their positions
        m = t.matrix
        h.update(str(("csr", m.dtype, m.shape)).encode())
        for part in (m.indptr, m.indices, m.data):
            h.update(np.ascontiguousarray(part))
        return
    t = t.detach().cpu().contiguous()
    h.update(str((t.dtype, tuple(t.shape))).encode())
    h.update(t.numpy().reshape(-1).view(np.uint8))


def _digest(value):
    if value is None:
        return None
    h = hashlib.sha256()  # hardware-accelerated on current CPUs
    if isinstance(value, dict):
        for key in sorted(value):
            h.update(key.encode())
            _hash_tensor(h, value[key])
    elif isinstance(value, np.ndarray):
        h.update(np.ascontiguousarray(value).tobytes())
    else:
        _hash_tensor(h, value)
    return h.hexdigest()


def data_fingerprint(data, groups):
    """Digests of the training inputs, targets, weights and groups."""
    groups = None if groups is None else np.asarray(groups).astype("U")
    return {
        "n_samples": len(data),
        "X": _digest(data.X),
        "y": _digest(data.y),
        "sample_weight": _digest(data.sample_weight),
        "groups": _digest(groups),
    }
