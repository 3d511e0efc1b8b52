"""Saving and loading fitted models (a joblib pickle plus a JSON sidecar)."""

from ._layout import final_estimator, walk_estimators
from ._model_file import (
    ModelFileError,
    ModelVersionWarning,
    check_integrity,
    check_versions,
    file_sha256,
    load,
    read_metadata,
    save,
    sidecar_path,
    temporary_name,
)

__all__ = [
    "ModelFileError",
    "ModelVersionWarning",
    "check_integrity",
    "check_versions",
    "file_sha256",
    "final_estimator",
    "load",
    "read_metadata",
    "save",
    "sidecar_path",
    "temporary_name",
    "walk_estimators",
]
