"""The training engine: the only subpackage that talks to skorch (private)."""

from ._base import COMMON_CONSTRAINTS, BaseNet, instantiate_module
from ._docs import fill_doc

__all__ = ["BaseNet", "COMMON_CONSTRAINTS", "fill_doc", "instantiate_module"]
