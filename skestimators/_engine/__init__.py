"""The training engine: the only subpackage that talks to skorch (private)."""

from ._base import COMMON_CONSTRAINTS, BaseNet, instantiate_module
from ._docs import fill_doc
from ._lazy import LazyRows, check_memmap, scale_uint8

__all__ = [
    "BaseNet",
    "COMMON_CONSTRAINTS",
    "LazyRows",
    "check_memmap",
    "fill_doc",
    "instantiate_module",
    "scale_uint8",
]
