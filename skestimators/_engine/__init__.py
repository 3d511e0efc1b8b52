"""The training engine: the only subpackage that talks to skorch (private)."""

from skorch.callbacks import Callback

from ._base import COMMON_CONSTRAINTS, BaseNet
from ._config import EngineConfig, TargetOptions
from ._device import openmp_threads, resolve_device, torch_threads
from ._distributed import is_main_process, on_main_process, world_size
from ._docs import fill_doc
from ._lazy import LazyRows, check_memmap, scale_uint8
from ._modules import instantiate_module
from ._targets import (
    NamedTargetsScoreMixin,
    align_targets,
    encode_classification,
    encode_regression,
    target_names,
)
from ._validation import caller_stacklevel

__all__ = [
    "BaseNet",
    "Callback",
    "COMMON_CONSTRAINTS",
    "EngineConfig",
    "TargetOptions",
    "LazyRows",
    "NamedTargetsScoreMixin",
    "align_targets",
    "caller_stacklevel",
    "check_memmap",
    "encode_classification",
    "encode_regression",
    "fill_doc",
    "instantiate_module",
    "is_main_process",
    "on_main_process",
    "openmp_threads",
    "resolve_device",
    "scale_uint8",
    "target_names",
    "torch_threads",
    "world_size",
]
