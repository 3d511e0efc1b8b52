"""Checkpoint directories that name their fit.

``{params}`` and ``{data}`` in a ``checkpoint`` directory are replaced by
digests of the estimator's configuration (and callbacks) and of its training
data, so that the clones of a cross-validation or a search (one per fold and
candidate) each keep their own run, and running them again resumes each
where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import string
from pathlib import Path

__all__ = ["check_directory", "run_directory"]

#: What a checkpoint directory may name, and how many hexadecimal digits.
_FIELDS = ("params", "data")
_DIGITS = 12


def _digest_of(value):
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:_DIGITS]


def _fields(template):
    """The fields named in ``template``; a ValueError for any other."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(
            f"checkpoint={template!r} is not a valid directory template ({exc}); "
            "write a literal brace as '{{' or '}}'."
        ) from None
    named = set()
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in _FIELDS or spec or conversion:
            shown = "{" + (field or "") + ("!" + conversion if conversion else "")
            shown += (":" + spec if spec else "") + "}"
            raise ValueError(
                f"checkpoint={template!r} names {shown}; a checkpoint directory "
                "may name only {params} (a digest of the estimator's parameters: "
                "one directory per candidate of a search) and {data} (a digest "
                "of the training data: one per fold of a cross-validation). "
                "Write a literal brace as '{{' or '}}'."
            )
        named.add(field)
    return named


def _path_text(template):
    """The directory as text, ``~`` expanded; an empty one refused (it would
    be the working directory)."""
    text = os.fspath(template)
    if not str(text).strip():
        raise ValueError(
            f"checkpoint={template!r} is empty; give a directory, or None for no "
            "checkpoint."
        )
    return str(Path(os.path.expanduser(text)))


def check_directory(template):
    """The fields a ``checkpoint`` parameter names, checked before any data
    is hashed: a ValueError for an empty directory or another field."""
    return _fields(_path_text(template))


def run_directory(template, name, config, data, callbacks=()):
    """The directory of this fit: ``template`` with ``{params}`` and
    ``{data}`` replaced by digests of the estimator's name, configuration and
    callbacks, and of the training data's fingerprint."""
    template = _path_text(template)
    named = _fields(template)
    digests = {}
    if "params" in named:
        digests["params"] = _digest_of(
            {"estimator": name, "config": config, "callbacks": list(callbacks)}
        )
    if "data" in named:
        digests["data"] = _digest_of(data)
    return Path(template.format(**digests))
