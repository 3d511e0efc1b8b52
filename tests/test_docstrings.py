"""Every public class and function has a numpydoc Examples section.

The names are those of every public module's ``__all__`` (the API reference
of ``docs/`` lists the same names); the examples themselves run as doctests
(``--doctest-modules`` in pyproject.toml). The pages of the user guide run
here too, so that the guide's code keeps working.
"""

import doctest
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import skestimators

_EXAMPLES = re.compile(r"^[ \t]*Examples[ \t]*\n[ \t]*-{8,}[ \t]*$", re.MULTILINE)
USER_GUIDE = Path(__file__).resolve().parents[1] / "docs" / "user_guide"


def public_modules():
    """``skestimators`` and its public subpackages/modules that have ``__all__``."""
    names = ["skestimators"]
    for info in pkgutil.iter_modules(skestimators.__path__):
        if not info.name.startswith("_"):
            names.append(f"skestimators.{info.name}")
    modules = [importlib.import_module(name) for name in names]
    return [m for m in modules if hasattr(m, "__all__")]


def public_objects():
    """``(qualified name, object)`` of every public class and function."""
    seen = {}
    for module in public_modules():
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue  # constants, scorer instances, __version__
            seen.setdefault(id(obj), (f"{module.__name__}.{name}", obj))
    return sorted(seen.values(), key=lambda item: item[0])


def _params():
    for name, obj in public_objects():
        yield pytest.param(obj, id=name)


@pytest.mark.parametrize("obj", list(_params()))
def test_public_docstring_has_examples(obj):
    doc = obj.__doc__ or ""  # not inspect.getdoc: no inheriting a base's
    match = _EXAMPLES.search(doc)
    assert match, f"{obj.__qualname__} has no 'Examples' section in its docstring."
    assert ">>>" in doc[match.end() :], (
        f"The Examples section of {obj.__qualname__} has no doctest (>>>) line."
    )


def test_all_names_exist():
    for module in public_modules():
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert not missing, f"{module.__name__}.__all__ names missing objects {missing}"


@pytest.mark.parametrize("page", sorted(USER_GUIDE.glob("*.rst")), ids=lambda p: p.name)
def test_user_guide_code_runs(page, monkeypatch):
    pytest.importorskip("matplotlib", reason="needs matplotlib").use("Agg")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    result = doctest.testfile(
        str(page),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False,
        report=False,
    )
    assert result.failed == 0, f"{result.failed} example(s) of {page.name} failed"
