"""Saving and loading fitted models (skops or a pickle, plus a JSON sidecar)."""

from ._atomic import (
    cut_name,
    process_alive,
    remove_stale_temporaries,
    sync_file,
    sync_folder,
    temporary_name,
)
from ._layout import final_estimator, input_layout, walk_estimators
from ._lock import OutputLockedError, output_lock
from ._model_file import (
    ModelFileError,
    ModelFileNotFoundError,
    ModelVersionWarning,
    UntrustedTypeError,
    check_integrity,
    check_versions,
    load,
    read_metadata,
    save,
)
from ._paths import companion_name, companion_path, file_sha256, sidecar_path

__all__ = [
    "ModelFileError",
    "OutputLockedError",
    "ModelFileNotFoundError",
    "ModelVersionWarning",
    "UntrustedTypeError",
    "check_integrity",
    "check_versions",
    "companion_name",
    "companion_path",
    "cut_name",
    "file_sha256",
    "final_estimator",
    "input_layout",
    "load",
    "output_lock",
    "process_alive",
    "read_metadata",
    "remove_stale_temporaries",
    "save",
    "sidecar_path",
    "sync_file",
    "sync_folder",
    "temporary_name",
    "walk_estimators",
]
