"""The training engine: the only subpackage that talks to skorch (private)."""

from skorch.callbacks import Callback

from ._base import COMMON_CONSTRAINTS, BaseNet, instantiate_module
from ._config import EngineConfig, TargetOptions
from ._docs import fill_doc
from ._lazy import LazyRows, check_memmap, scale_uint8

__all__ = [
    "BaseNet",
    "Callback",
    "COMMON_CONSTRAINTS",
    "EngineConfig",
    "TargetOptions",
    "LazyRows",
    "check_memmap",
    "fill_doc",
    "instantiate_module",
    "scale_uint8",
]
