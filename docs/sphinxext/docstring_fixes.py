"""Docstring fixes applied before numpydoc reads them.

* A type such as ``ndarray of shape (n_features_in_,)`` is fine in
  ``help()``, but reST reads ``n_features_in_`` (a word ending in an
  underscore) as a hyperlink reference and fails on it: such words in the
  type part of ``name : type`` lines are wrapped in double backquotes.
* A module constant without a ``#:`` comment would show the docstring of
  its type (``tuple``: "Built-in immutable sequence..."); it is dropped, so
  that the page shows the value only.
* Methods inherited from scikit-learn (``score``, ``set_params``,
  ``set_fit_request``...) refer to labels and glossary terms of
  scikit-learn's own documentation, which this build does not fetch
  (no intersphinx): those references become plain text.
"""

from __future__ import annotations

import inspect
import re

_FIELD = re.compile(r"^(\s*[\w*][\w*, ]* : )(.+)$")
_TRAILING_UNDERSCORE = re.compile(r"(?<![`\w])([A-Za-z]\w*_)(?![`\w])")


def fix_types(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        match = _FIELD.match(line)
        if match:
            head, spec = match.groups()
            lines[i] = head + _TRAILING_UNDERSCORE.sub(r"``\1``", spec)


def drop_type_docstring(app, what, name, obj, options, lines):
    if what not in ("data", "attribute"):
        return
    type_doc = inspect.getdoc(type(obj))
    if type_doc and "\n".join(lines).strip() == type_doc.strip():
        lines[:] = []


_SKLEARN_REF = re.compile(r":(?:ref|term|doc):`([^`<]*?)\s*(?:<([^>`]*)>)?`")


def _plain(match):
    title, target = match.group(1).strip(), match.group(2)
    return title if target else title.replace("_", " ")


def unlink_sklearn_refs(app, what, name, obj, options, lines):
    module = getattr(obj, "__module__", None) or ""
    if module.split(".")[0] == "sklearn":
        lines[:] = [_SKLEARN_REF.sub(_plain, line) for line in lines]


def setup(app):
    # Before numpydoc (priority 500), which turns the fields into markup.
    app.connect("autodoc-process-docstring", drop_type_docstring, priority=90)
    app.connect("autodoc-process-docstring", fix_types, priority=100)
    app.connect("autodoc-process-docstring", unlink_sklearn_refs, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
