"""Saving and loading fitted models (a joblib pickle plus a JSON sidecar)."""

from ._model_file import (
    ModelFileError,
    ModelVersionWarning,
    load,
    read_metadata,
    save,
    sidecar_path,
)

__all__ = [
    "ModelFileError",
    "ModelVersionWarning",
    "load",
    "read_metadata",
    "save",
    "sidecar_path",
]
