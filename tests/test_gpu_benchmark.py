"""The GPU check script, ``benchmarks/gpu.py``, on a machine without a GPU."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"


def _run(*args):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def gpu_script():
    spec = importlib.util.spec_from_file_location("gpu_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_gpu_says_so_and_exits_0():
    done = _run()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "No GPU available (torch.cuda.is_available() is False): nothing checked."
    )


def test_cpu_smoke_run_of_one_check(tmp_path):
    out = tmp_path / "gpu.json"
    done = _run("--device", "cpu", "--quick", "--only", "amp", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    table = (tmp_path / "gpu.md").read_text()
    assert "| amp | GalaxyZooRegressor | bf16 valid loss |" in table
    assert "fp16 with gradient scaling: CUDA only | - | skipped |" in table
    assert "FAILED" not in table
    assert out.read_text().startswith("[")


def test_unknown_check_is_an_error():
    done = _run("--device", "cpu", "--only", "placement,nonsense")
    assert done.returncode == 2
    assert "nonsense" in done.stderr


def test_a_check_that_raises_fails_the_run(gpu_script, monkeypatch, capsys):
    def broken(ctx):
        raise RuntimeError("broken on purpose\nsecond line")

    def passing(ctx):
        rows = gpu_script.Rows("passing")
        rows.add("-", "value", 1.0, "finite", True)
        return rows

    checks = {"broken": (broken, 10), "passing": (passing, 10)}
    monkeypatch.setattr(gpu_script, "CHECKS", checks)
    assert gpu_script.main(["--device", "cpu", "--only", "passing"]) == 0
    assert gpu_script.main(["--device", "cpu"]) == 1
    printed = capsys.readouterr().out
    assert "| broken | - | error | RuntimeError: broken on purpose | no error |" in (
        printed
    )
    assert "second line" not in printed
    assert "| passing | - | value | 1 | finite | pass |" in printed


def test_staging_comparison_restores_the_shipped_limits(gpu_script):
    # The A/B row of the throughput check patches the staging limits: they
    # must be back whatever happens, or later checks measure another setting.
    from skestimators._engine import _staging

    shipped = (_staging._STAGE_BYTES, _staging._STAGE_MAX_BYTES)
    seen = []

    def predict(X):
        seen.append((_staging._STAGE_BYTES, _staging._STAGE_MAX_BYTES))

    value = gpu_script.staging_ab(predict, None, repeats=2)
    assert value.count(" ms") == 3
    inf = float("inf")
    assert sorted(set(seen)) == sorted({(0, inf), (inf, inf), shipped})
    assert len(seen) == 9  # each setting: a warm call, then the repeats

    def broken(X):
        raise RuntimeError("CUDA error")

    with pytest.raises(RuntimeError):
        gpu_script.staging_ab(broken, None)
    assert (_staging._STAGE_BYTES, _staging._STAGE_MAX_BYTES) == shipped
