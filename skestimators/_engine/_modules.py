"""Building the network of an estimator from its ``module`` parameter."""

from __future__ import annotations

import copy
import inspect

import torch


def instantiate_module(module, module_params, input_shape, n_outputs, default):
    """Build the network from a class, an instance, or None (``default``)."""
    params = dict(module_params or {})
    if module is None:
        module = default
    if isinstance(module, torch.nn.Module):
        if params:
            raise ValueError(
                "module_params can only be used with a module class, not an "
                "instance; configure the instance directly."
            )
        return copy.deepcopy(module)
    if not (isinstance(module, type) and issubclass(module, torch.nn.Module)):
        raise TypeError(
            f"module must be a torch.nn.Module subclass or instance, got {module!r}."
        )
    accepted = inspect.signature(module.__init__).parameters
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    for name, value in (("input_shape", input_shape), ("n_outputs", n_outputs)):
        if (name in accepted or takes_kwargs) and name not in params:
            params[name] = value
    try:
        return module(**params)
    except TypeError as exc:
        raise TypeError(
            f"Could not build {module.__name__}(**{params}): {exc}"
        ) from None


def check_trainable(module):
    """Refuse a network with nothing to train, naming what is wrong."""
    parameters = list(module.parameters())
    if not parameters:
        raise ValueError(
            f"The module {type(module).__name__} has no parameters to train "
            "(after a forward pass, which builds lazy layers): give it at "
            "least one layer with weights."
        )
    if not any(p.requires_grad for p in parameters):
        raise ValueError(
            f"Every parameter of the module {type(module).__name__} is frozen "
            f"(requires_grad=False, {len(parameters)} tensors): nothing would "
            "train. Unfreeze at least its head (p.requires_grad_(True))."
        )


def dtype_hint(module):
    """A hint for a module whose weights are not float32 (``.double()``):
    the engine feeds it float32 batches. Empty otherwise."""
    kinds = sorted(
        {str(p.dtype) for p in module.parameters() if p.dtype != torch.float32}
    )
    if not kinds:
        return ""
    return (
        f". Its weights are {', '.join(kinds)}, while the batches are float32: "
        "build it in float32 (module.float()); mixed precision is amp="
    )


def _shapes(batch):
    if isinstance(batch, dict):
        return {k: tuple(v.shape) for k, v in batch.items()}
    return tuple(batch.shape)
