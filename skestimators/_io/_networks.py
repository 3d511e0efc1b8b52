"""Network estimators in the safe format: weights as safetensors, the rest skops.

skops stores what scikit-learn estimators are made of (parameters, arrays,
builtins) but not a torch network. A network estimator is therefore split in
two for a safe model file: a copy of the estimator without its skorch net
(``net_``), which skops stores, and the weights of the network, stored as
`safetensors <https://huggingface.co/docs/safetensors>`_ entries of the same
zip file (skops ignores entries it does not know). Both loaders rebuild data
only: safetensors reads tensors, skops rebuilds trusted types.

On loading, each network is rebuilt by the estimator itself from its
parameters and the input shape and output count recorded in ``fit``, and the
weights are loaded into it. The optimizer's state (Adam's moments, SGD's
momentum) is stored the same way: its tensors as a second safetensors entry,
its hyperparameters as plain values, so that a ``partial_fit`` after loading
continues exactly as it would have in memory (for optimizers whose state is
tensors and numbers, as torch's built-in ones; another is stored fresh, with
a warning). What a pickle keeps and this format does not: the gradient
scaler of mixed-precision training (it starts afresh) and the user's
callback objects' fitted state.
"""

from __future__ import annotations

import copy
import io
import warnings
import zipfile

import pandas as pd

from .._stack import caller_stacklevel
from ._layout import walk_estimators

__all__ = ["has_networks", "restore_networks", "split_networks"]

_WEIGHTS = "skestimators/weights/{}.safetensors"
_OPTIMIZER = "skestimators/optimizers/{}.safetensors"
_PLAIN = (bool, int, float, str, type(None))
_MARKER = "_safe_network"


def _networks(estimator):
    """``(path, estimator)`` of every fitted network estimator in a model."""
    return [(p, est) for p, est in walk_estimators(estimator) if "net_" in vars(est)]


def has_networks(estimator) -> bool:
    """Whether a model holds fitted torch networks."""
    return bool(_networks(estimator))


def split_networks(estimator):
    """``(copy, weights)``: the model without its networks, and their weights.

    ``copy`` is a deep copy of ``estimator`` in which every network
    estimator's ``net_`` is replaced by a plain description (rebuilt by
    :func:`restore_networks`); ``weights`` maps a zip entry name to the
    safetensors bytes of one network. The networks themselves are not
    copied. Raises ``ValueError`` naming the estimator that cannot be split.
    """
    from safetensors.torch import save

    networks = _networks(estimator)
    memo = {}
    for _, est in networks:
        # deepcopy returns what the memo holds: the nets are left out, not copied.
        memo[id(est.net_)] = None
        memo[id(est.history_)] = None
        memo[id(est.device_)] = None
    stripped = copy.deepcopy(estimator, memo)
    weights = {}
    copies = dict(_networks_by_path(stripped))
    for i, (path, est) in enumerate(networks):
        spec = est._network_spec()
        if spec is None:
            raise ValueError(
                f"{path} was fitted by a version of skestimators that did not "
                "record its network's shape; fit it again"
            )
        state = {
            name: tensor.detach().to("cpu").contiguous().clone()
            for name, tensor in est.net_.module_.state_dict().items()
        }
        entry = _WEIGHTS.format(i)
        weights[entry] = save(state)
        optimizer = _optimizer_record(est.net_, _OPTIMIZER.format(i))
        if optimizer is None and getattr(est.net_, "optimizer_", None) is not None:
            warnings.warn(
                f"The optimizer of {path} ({type(est.net_.optimizer_).__name__}) "
                "holds state other than tensors and numbers, which the safe "
                "format does not store: training after loading starts a fresh "
                "optimizer (its weights and predictions are kept). Save with "
                "format='pickle' to keep it.",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
        if optimizer is not None:
            record_tensors, optimizer = optimizer
            weights[optimizer["tensors"]] = save(record_tensors)
        target = copies[path]
        for name in ("net_", "history_", "device_"):
            target.__dict__.pop(name, None)
        history = est.history_
        target.__dict__[_MARKER] = {
            "weights": entry,
            "spec": spec,
            "device": str(est.net_.device),
            "history": {
                "index": [int(i) for i in history.index],
                "index_name": history.index.name,
                "columns": {str(c): history[c].tolist() for c in history.columns},
            },
            "optimizer": optimizer,
        }
    return stripped, weights


def _is_plain(value):
    if isinstance(value, (tuple, list)):
        return all(_is_plain(v) for v in value)
    return isinstance(value, _PLAIN)


def _optimizer_record(net, entry):
    """``(tensors, record)`` of the net's optimizer state, or None.

    ``tensors`` maps ``"<parameter index>.<name>"`` to the state tensors (for
    a safetensors entry named ``entry``); ``record`` holds the rest as plain
    values. None when the optimizer holds a value that is neither a tensor
    nor a plain value (a custom optimizer's): the network is then loaded
    with a fresh optimizer.
    """
    import torch

    optimizer = getattr(net, "optimizer_", None)
    if optimizer is None:
        return None
    state = optimizer.state_dict()
    tensors, values = {}, {}
    for index, slots in state["state"].items():
        for name, value in slots.items():
            key = f"{index}.{name}"
            if isinstance(value, torch.Tensor):
                tensors[key] = value.detach().to("cpu").contiguous().clone()
            elif _is_plain(value):
                values[key] = value
            else:
                return None
    groups = [
        dict(group, params=list(group["params"])) for group in state["param_groups"]
    ]
    if not all(_is_plain(v) for group in groups for v in group.values()):
        return None
    return tensors, {
        "tensors": entry,
        "values": values,
        "param_groups": groups,
    }


def _optimizer_state(record, archive):
    """The optimizer ``state_dict`` stored by :func:`_optimizer_record`."""
    from safetensors.torch import load

    if record is None:
        return None
    state = {}
    slots = dict(load(archive.read(record["tensors"])), **record["values"])
    for key, value in slots.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": record["param_groups"]}


def _networks_by_path(estimator):
    """``(path, estimator)`` of the copies left with ``net_=None``."""
    for path, est in walk_estimators(estimator):
        if "net_" in vars(est) and est.net_ is None:
            yield path, est


def add_entries(data: bytes, entries: dict) -> bytes:
    """The zip ``data`` with ``entries`` (name to bytes) added, stored uncompressed."""
    buffer = io.BytesIO(data)
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_STORED) as archive:
        for name, value in entries.items():
            archive.writestr(name, value)
    return buffer.getvalue()


def restore_networks(estimator, data: bytes):
    """Rebuild, in place, every network of a model loaded from a safe file."""
    from safetensors.torch import load

    marked = [est for _, est in walk_estimators(estimator) if _MARKER in vars(est)]
    if not marked:
        return estimator
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for est in marked:
            record = est.__dict__.pop(_MARKER)
            state = load(archive.read(record["weights"]))
            history = record["history"]
            frame = pd.DataFrame(history["columns"], index=history["index"])
            frame.index.name = history["index_name"]
            est.history_ = frame
            optimizer = _optimizer_state(record.get("optimizer"), archive)
            est._restore_network(
                record["spec"], state, record["device"], optimizer_state=optimizer
            )
    return estimator
