"""Write one API reference page per public module, listing its ``__all__``.

The pages are generated (into ``generated/api/``) before Sphinx reads the
sources, so that autosummary then writes a stub page for every name. A name
added to a module's ``__all__`` appears in the reference at the next build,
in the section that fits its kind; a new public module is one more entry in
``api_modules`` in ``conf.py``.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

# (section title, autosummary template), in page order.
SECTIONS = {
    "estimators": ("Estimators", "estimator.rst"),
    "transformers": ("Transformers", "estimator.rst"),
    "splitters": ("Cross-validation splitters", "estimator.rst"),
    "modules": ("Network modules", "torch_module.rst"),
    "classes": ("Classes", "class.rst"),
    "functions": ("Functions", "function.rst"),
    "exceptions": ("Exceptions and warnings", "exception.rst"),
    "data": ("Constants and scorers", "data.rst"),
}


def kind_of(obj) -> str:
    """The section a public object belongs in."""
    if inspect.isclass(obj):
        if issubclass(obj, BaseException):
            return "exceptions"
        names = {cls.__name__ for cls in inspect.getmro(obj)}
        if "Module" in names and obj.__module__.startswith("skestimators.nn"):
            return "modules"
        if hasattr(obj, "split") and hasattr(obj, "get_n_splits"):
            return "splitters"
        if "BaseEstimator" in names:
            if hasattr(obj, "transform") and not hasattr(obj, "predict"):
                return "transformers"
            return "estimators"
        return "classes"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return "functions"
    return "data"


def module_page(module_name: str, title: str) -> str:
    """The reST of one module's reference page."""
    module = importlib.import_module(module_name)
    public = getattr(module, "__all__", None)
    if public is None:
        raise ValueError(f"{module_name} has no __all__: nothing to document.")
    grouped: dict[str, list[str]] = {key: [] for key in SECTIONS}
    for name in sorted(public, key=str.lower):
        grouped[kind_of(getattr(module, name))].append(name)
    heading = f"``{module_name}``: {title}"
    lines = [
        f".. _api-{module_name}:",
        "",
        heading,
        "=" * len(heading),
        "",
        f".. automodule:: {module_name}",
        "   :no-members:",
        "   :no-inherited-members:",
        "",
        f".. currentmodule:: {module_name}",
        "",
    ]
    for key, names in grouped.items():
        if not names:
            continue
        section, template = SECTIONS[key]
        lines += [section, "-" * len(section), "", ".. autosummary::"]
        lines += ["   :toctree: .", f"   :template: autosummary/{template}"]
        lines += ["   :nosignatures:", ""]
        lines += [f"   {name}" for name in names]
        lines.append("")
    return "\n".join(lines)


def index_page(modules: dict) -> str:
    lines = [
        ".. _api:",
        "",
        "API reference",
        "=============",
        "",
        "Every public name of the package, module by module: the names listed in",
        "each module's ``__all__``. Import them from the module shown (for",
        "instance ``from skestimators.preprocessing import SpectrumNormalizer``).",
        "",
        ".. toctree::",
        "   :maxdepth: 2",
        "",
    ]
    lines += [f"   {name}" for name in modules]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    # Rewrite only on change, so that incremental builds stay incremental.
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def write_pages(app, config) -> None:
    out = Path(app.srcdir) / "generated" / "api"
    out.mkdir(parents=True, exist_ok=True)
    for name, title in config.api_modules.items():
        _write(out / f"{name}.rst", module_page(name, title))
    _write(out / "index.rst", index_page(config.api_modules))


def setup(app):
    app.add_config_value("api_modules", {}, "env")
    app.connect("config-inited", write_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
