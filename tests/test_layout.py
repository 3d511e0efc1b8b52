"""The package layout: who may import whom.

Every module under ``skestimators/`` is parsed with :mod:`ast` (nothing is
imported) and its imports are resolved to absolute module names. The rules
are those of the style guide:

* a subpackage reaches a sibling only through the sibling's front, its
  ``__init__``, never through one of its private modules;
* no module imports the package root (its ``__init__`` imports every
  estimator, so such an import is a hidden cycle);
* nothing imports the command line;
* dependencies point one way, ``nn`` <- ``_engine`` <- ``estimators`` <-
  ``cli``;
* the graph of subpackages is acyclic.

Imports inside functions count like the others: a lazy import is still a
dependency (it runs, only later), so a cycle through it is still a cycle of
the design. So do imports under ``if TYPE_CHECKING:``, and the modules that a
package front imports on first access (the values of its ``_EXPORTS``).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = "skestimators"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_module(name: str) -> bool:
    """Whether the dotted ``name`` is a module or package of the source tree."""
    path = ROOT.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


MODULES = _modules()


def _resolve(name: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute name of ``from <level dots><module> import ...`` in ``name``."""
    if not level:
        return module
    here = name.split(".") if is_package else name.split(".")[:-1]
    base = here[: len(here) - level + 1]
    return ".".join(base + ([module] if module else []))


def _lazy_targets(node: ast.AST) -> list[str]:
    """The modules named in a package front's ``_EXPORTS = {name: ".module"}``.

    These are imports too, run on first access (see ``skestimators._exports``).
    """
    if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)):
        return []
    if not any(getattr(t, "id", None) == "_EXPORTS" for t in node.targets):
        return []
    return [
        v.value
        for v in node.value.values
        if isinstance(v, ast.Constant) and isinstance(v.value, str)
    ]


def _imports(name: str, path: Path) -> list[tuple[int, str]]:
    """``(line, absolute module)`` of every import in the module ``name``.

    ``from package import name`` counts as an import of ``package.name``
    when that is a module, and as an import of ``package`` otherwise.
    """
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(name, is_package, node.level, node.module)
            for alias in node.names:
                child = f"{target}.{alias.name}"
                found.append((node.lineno, child if _is_module(child) else target))
        for lazy in _lazy_targets(node):
            level = len(lazy) - len(lazy.lstrip("."))
            target = _resolve(name, is_package, level, lazy.lstrip(".") or None)
            found.append((node.lineno, target))
    return [(line, mod) for line, mod in found if mod.split(".")[0] == PACKAGE]


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


def _unit(module: str) -> str | None:
    """The subpackage (or top-level module) that ``module`` belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _violations(rule) -> str:
    """The imports that break ``rule(module, target)``, one per line."""
    found = {
        f"{MODULES[name].relative_to(ROOT.parent)}:{line}: imports {target}"
        for name, imports in IMPORTS.items()
        for line, target in imports
        if rule(name, target)
    }
    return "\n".join(sorted(found))


def test_imports_are_resolved():
    assert _resolve("skestimators.metrics._galaxy", False, 2, "nn") == (
        "skestimators.nn"
    )
    assert _resolve("skestimators.metrics", True, 1, "_galaxy") == (
        "skestimators.metrics._galaxy"
    )
    assert _resolve("skestimators.cli", False, 1, None) == "skestimators"
    tree = ast.parse('_EXPORTS = {"load": "._io", "MLP": "..nn"}')
    assert _lazy_targets(tree.body[0]) == ["._io", "..nn"]


def test_every_module_is_parsed():
    assert f"{PACKAGE}.estimators" in MODULES and f"{PACKAGE}.cli" in MODULES
    assert sum(len(v) for v in IMPORTS.values()) > 50


def test_no_import_of_a_sibling_private_module():
    def reaches_into_sibling(name, target):
        unit = _unit(target)
        if unit is None or unit == _unit(name):
            return False
        private = [part for part in target.split(".")[2:] if part.startswith("_")]
        return bool(private)

    found = _violations(reaches_into_sibling)
    assert not found, found


def test_nothing_imports_the_package_root():
    found = _violations(lambda name, target: target == PACKAGE and name != PACKAGE)
    assert not found, found


def test_nothing_imports_the_command_line():
    def imports_cli(name, target):
        return _unit(target) == "cli" and _unit(name) != "cli"

    found = _violations(imports_cli)
    assert not found, found


@pytest.mark.parametrize(
    "unit, forbidden",
    [("nn", {"_engine", "estimators", "cli"}), ("_engine", {"estimators", "cli"})],
)
def test_dependencies_point_one_way(unit, forbidden):
    def upstream(name, target):
        return _unit(name) == unit and _unit(target) in forbidden

    found = _violations(upstream)
    assert not found, found


def _unit_graph() -> dict[str, set[str]]:
    graph = defaultdict(set)
    for name, imports in IMPORTS.items():
        source = _unit(name)
        if source is None:  # the root __init__ gathers the public API
            continue
        graph[source] |= {
            _unit(t) for _, t in imports if _unit(t) not in (None, source)
        }
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (its nodes, first repeated last), or None."""
    state: dict[str, str] = {}  # absent: unvisited, "open": on the path, "done"
    path: list[str] = []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_cycles():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_subpackages_form_no_cycle():
    graph = _unit_graph()
    assert {"nn", "estimators", "metrics"} <= set(graph)
    cycle = _find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)
