"""Sphinx configuration of the skestimators documentation.

``make -C docs html`` builds it with warnings as errors; the gallery examples
run during the build and a failing example fails it. Nothing is fetched from
the network (no intersphinx).
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "sphinxext"))

# Examples and doctests train small networks: one thread each is faster on a
# shared machine than oversubscribing it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import skestimators  # noqa: E402

project = "skestimators"
author = "the skestimators developers"
copyright = "the skestimators developers, BSD-3-Clause"
version = release = skestimators.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "api_pages",
    "docstring_fixes",
]

# The public modules documented in the API reference, with their titles. Each
# page lists the module's ``__all__``; a new public module is one more line.
api_modules = {
    "skestimators": "estimators and model files",
    "skestimators.preprocessing": "transformers",
    "skestimators.model_selection": "splitters, comparisons and searches",
    "skestimators.ensemble": "ensembles",
    "skestimators.metrics": "metrics and scorers",
    "skestimators.datasets": "loaders and simulators",
    "skestimators.galaxy_zoo": "the Galaxy Zoo decision tree",
    "skestimators.mapping": "maps from rasters",
    "skestimators.nn": "PyTorch modules",
    "skestimators.recipes": "ready-made pipelines",
    "skestimators.scoring": "batch scoring",
    "skestimators.exceptions": "errors and warnings",
    "skestimators.tracking": "experiment tracking",
    "skestimators.uncertainty": "uncertainty of predictions",
    "skestimators.distributed": "data-parallel training",
}

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**/GALLERY_HEADER.rst"]
root_doc = "index"
default_role = "literal"
nitpicky = False

# -- autodoc / autosummary / numpydoc ------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"member-order": "groupwise"}
autodoc_typehints = "none"  # the numpydoc Parameters section says it better
autodoc_inherit_docstrings = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- sphinx-gallery ------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": ["examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "subsection_order": [
        "examples/exoplanet",
        "examples/galaxy_zoo",
        "examples/soil_carbon",
        "examples/search",
        "examples/scoring",
    ],
    # A broken example fails the build at once.
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "doc_module": ("skestimators",),
    "backreferences_dir": "generated/backreferences",
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "show_memory": False,
    "reset_modules_order": "both",
    # Show DataFrames and values a cell ends with, not matplotlib objects.
    "ignore_repr_types": r"matplotlib[\w.]*",
}

# -- HTML ----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skestimators {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 5,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_sidebars = {"index": []}
html_show_sourcelink = False
