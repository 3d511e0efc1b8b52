"""Light imports: PyTorch and skorch are imported when a network is used.

``import skestimators``, the metrics, the splitters and ``skestimators
--help`` stay fast because the package fronts resolve their names on first
access (PEP 562 ``__getattr__``). Each check runs in a fresh interpreter,
since this test session has long imported PyTorch.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import skestimators

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "skorch")

# What a user of the light parts runs; none of it may import HEAVY.
LIGHT = {
    "package": "import skestimators",
    "metrics": "import skestimators.metrics",
    "splitters": (
        "import skestimators.model_selection\n"
        "from skestimators.model_selection import (\n"
        "    BufferedKFold, SpatialBlockKFold, check_dask_workers, plot_fold_map\n"
        ")"
    ),
    "galaxy_zoo": "from skestimators.galaxy_zoo import project_galaxy_zoo",
    "datasets": "import skestimators.datasets",
    "tabular preprocessing": (
        "from skestimators.preprocessing import PatchStatistics, SpectrumNormalizer"
    ),
    "model files": "from skestimators import MultiInput, load, read_metadata, save",
    "mapping": "import skestimators.mapping",
    "scoring": "import skestimators.scoring",
    "command line help": textwrap.dedent(
        """
        import runpy
        sys.argv = ["skestimators", "--help"]
        try:
            runpy.run_module("skestimators.cli", run_name="__main__")
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
        """
    ),
}


def _run(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize("code", LIGHT.values(), ids=LIGHT.keys())
def test_light_imports_do_not_import_torch(code):
    check = (
        f"import sys\n{code}\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not heavy, f'imported {heavy}'\n"
    )
    result = _run(check)
    assert result.returncode == 0, result.stderr


def test_help_lists_the_commands():
    result = _run(
        "import runpy, sys\n"
        "sys.argv = ['skestimators', '--help']\n"
        "runpy.run_module('skestimators.cli', run_name='__main__')\n"
    )
    assert result.returncode == 0, result.stderr
    for command in ("score", "train", "info", "demo"):
        assert command in result.stdout


def test_a_network_imports_torch_on_first_use():
    result = _run(
        "import sys\n"
        "import skestimators\n"
        "assert 'torch' not in sys.modules\n"
        "from skestimators import NetClassifier\n"
        "assert 'torch' in sys.modules\n"
        "assert NetClassifier is skestimators.estimators.NetClassifier\n"
    )
    assert result.returncode == 0, result.stderr


LAZY_PACKAGES = [
    "skestimators",
    "skestimators.model_selection",
    "skestimators.preprocessing",
]


@pytest.mark.parametrize("name", LAZY_PACKAGES)
def test_lazy_names_resolve_to_their_definitions(name):
    package = importlib.import_module(name)
    exports = package._EXPORTS
    assert set(package.__all__) - {"__version__"} <= set(exports)
    for attr, module_name in exports.items():
        module = importlib.import_module(module_name, name)
        assert getattr(package, attr) is getattr(module, attr)
    assert set(package.__all__) <= set(dir(package))


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        skestimators.not_a_name
    with pytest.raises(ImportError):
        from skestimators import not_a_name  # noqa: F401


def test_public_subpackages_are_attributes():
    import skestimators.metrics

    assert skestimators.metrics is sys.modules["skestimators.metrics"]
    assert "nn" in dir(skestimators) and skestimators.nn.__name__ == "skestimators.nn"
    assert "cli" not in skestimators._SUBMODULES  # nothing imports the command line
