"""The ``skestimators`` command line (click), in process and as a real process."""

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import skestimators
from skestimators import NetRegressor
from skestimators.cli import (
    EXIT_INTERRUPTED,
    EXIT_INVALID_ROWS,
    EXIT_OUTPUT_LOCKED,
    main,
)
from skestimators.scoring import _score as score_module
from skestimators.scoring import _writer as writer_module

from .conftest import FAST


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 8)).astype(np.float32)
    model = NetRegressor(**FAST).fit(X, X[:, :2].sum(1))
    path = skestimators.save(model, folder / "reg.joblib", training_data=(X,))
    np.save(folder / "X.npy", X)
    return path, folder / "X.npy", X, model


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_score_writes_output(tmp_path, saved):
    path, npy, X, model = saved
    out = tmp_path / "pred.parquet"
    result = invoke(
        "score",
        path,
        npy,
        "--output",
        out,
        "--chunk-rows",
        50,
        "--batch-size",
        300,
        "--device",
        "cpu",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    assert "Wrote" in result.output and "rows/s" in result.output
    frame = pd.read_parquet(out)
    np.testing.assert_allclose(
        frame["prediction"], model.predict(X), rtol=1e-5, atol=1e-6
    )


def test_invalid_rows_exit_code_and_listing(tmp_path, saved):
    path, _, X, _ = saved
    bad = X.copy()
    bad[[7, 8, 9]] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    out = tmp_path / "pred.csv"
    result = invoke("score", path, tmp_path / "bad.npy", "-o", out, "--no-progress")
    assert result.exit_code == EXIT_INVALID_ROWS
    assert "3 row(s) not scored" in result.output and "ids: 7, 8, 9." in result.output
    assert out.exists() and (tmp_path / "pred.csv.invalid.csv").exists()


def test_nonfinite_predictions_are_invalid_rows(tmp_path, saved):
    # Finite inputs so large that the network's output overflows: those rows
    # are reported as invalid (null predictions), the others are scored, and
    # the exit code says that rows were not scored.
    path, _, X, model = saved
    extreme = X.copy()
    extreme[[3, 50]] = 3e38
    np.save(tmp_path / "extreme.npy", extreme)
    out = tmp_path / "pred.csv"
    result = invoke("score", path, tmp_path / "extreme.npy", "-o", out, "--no-progress")
    assert result.exit_code == EXIT_INVALID_ROWS
    assert "2 row(s) not scored" in result.output and "ids: 3, 50." in result.output
    table = pd.read_csv(out)
    assert table.iloc[:, 1].isna().to_numpy().nonzero()[0].tolist() == [3, 50]
    keep = np.setdiff1d(np.arange(len(X)), [3, 50])
    np.testing.assert_allclose(
        table.iloc[keep, 1].to_numpy(), model.predict(X[keep]), rtol=1e-5
    )
    invalid = pd.read_csv(tmp_path / "pred.csv.invalid.csv")
    assert set(invalid["reason"]) == {"NaN or infinite prediction"}


def test_bad_input_gives_clear_error(tmp_path, saved):
    path = saved[0]
    np.save(tmp_path / "narrow.npy", np.zeros((4, 5), np.float32))
    result = invoke(
        "score", path, tmp_path / "narrow.npy", "-o", tmp_path / "o.parquet"
    )
    assert result.exit_code == 1
    assert "Error:" in result.output and "expects (8,)" in result.output
    assert not (tmp_path / "o.parquet").exists()
    result = invoke("score", path, saved[1], "-o", tmp_path / "o.xlsx")
    assert result.exit_code == 1 and "Cannot tell the output format" in result.output
    result = invoke(
        "score",
        path,
        saved[1],
        "-o",
        tmp_path / "o.csv",
        "--dask",
        "--scheduler",
        "tcp://127.0.0.1:1",
    )
    assert result.exit_code == 2


def test_info_prints_the_sidecar_and_checks(tmp_path, saved):
    path = saved[0]
    result = invoke("info", path, "--check")
    assert result.exit_code == 0, result.output
    meta = json.loads(result.output)
    assert meta["input"]["inputs"]["X"]["shape"] == [8]
    copy = tmp_path / "copy.joblib"
    copy.write_bytes(path.read_bytes() + b"!")
    (tmp_path / "copy.joblib.json").write_text(
        path.with_name(path.name + ".json").read_text()
    )
    result = invoke("info", copy, "--check")
    assert result.exit_code == 1 and "does not match" in result.output


def test_train_exoplanet_recipe(tmp_path):
    from skestimators.datasets import make_exoplanet

    X, y = make_exoplanet(120, random_state=0)
    folder = tmp_path / "data"
    folder.mkdir()
    np.save(folder / "spectra.npy", X["spectra"])
    X["aux"].to_csv(folder / "auxiliary.csv", index=False)
    y.to_csv(folder / "targets.csv", index=False)
    out = tmp_path / "exo.joblib"
    result = invoke(
        "train",
        "exoplanet",
        folder,
        "-o",
        out,
        "--variant",
        "conv1d",
        "--max-epochs",
        2,
        "--device",
        "cpu",
        "--cv",
        2,
    )
    assert result.exit_code == 0, result.output
    assert "water_auc" in result.output
    meta = json.loads((tmp_path / "exo.joblib.json").read_text())
    assert meta["training_data"]["n_samples"] == 120
    assert set(meta["cv_scores"]) == {
        "test_water_auc",
        "test_cloud_auc",
        "test_accuracy",
    }
    scored = invoke("score", out, folder, "-o", tmp_path / "p.csv", "--no-progress")
    assert scored.exit_code == 0, scored.output
    assert list(pd.read_csv(tmp_path / "p.csv").columns) == [
        "id",
        "proba_water",
        "proba_cloud",
    ]


def test_train_without_recipes(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "skestimators.recipes", None)
    result = invoke("train", "exoplanet", "builtin", "-o", tmp_path / "m.joblib")
    assert result.exit_code == 1 and "recipes" in result.output


def test_killed_process_resumes(tmp_path, saved):
    """A real ``kill -9`` mid-run: no output, and a rerun finishes the job."""
    path, _, X, model = saved
    big = np.tile(X, (10, 1))  # 1,200 rows in 300 chunks of 4
    np.save(tmp_path / "big.npy", big)
    out = tmp_path / "big.parquet"
    command = [
        sys.executable,
        "-m",
        "skestimators.cli",
        "score",
        str(path),
        str(tmp_path / "big.npy"),
        "-o",
        str(out),
        "--chunk-rows",
        "4",
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    manifest = tmp_path / "big.parquet.parts" / "manifest.jsonl"
    child = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        if manifest.exists() and len(manifest.read_text().splitlines()) > 5:
            break
        time.sleep(0.02)
    if child.poll() is not None:
        pytest.skip("the job finished before it could be killed")
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not out.exists()
    done = len(manifest.read_text().splitlines()) - 1
    finished = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    assert "chunk(s) resumed" in finished.stderr
    resumed = int(finished.stderr.split(", ")[-1].split(" chunk")[0])
    assert resumed >= done - 1  # the chunk being written at the kill may be redone
    frame = pd.read_parquet(out)
    np.testing.assert_array_equal(frame["id"], np.arange(len(big)))
    np.testing.assert_allclose(
        frame["prediction"], model.predict(big), rtol=1e-5, atol=1e-6
    )


def _score_command(path, data, out, *extra):
    return [
        sys.executable,
        "-m",
        "skestimators.cli",
        "score",
        str(path),
        str(data),
        "-o",
        str(out),
        "--no-progress",
        *map(str, extra),
    ]


def test_second_run_on_the_same_output_is_refused(tmp_path, saved):
    """Two real processes on one output: the second exits at once, the first
    finishes a complete output."""
    path, _, X, model = saved
    big = np.tile(X, (50, 1))  # 6,000 rows in 1,500 chunks of 4
    np.save(tmp_path / "big.npy", big)
    out = tmp_path / "big.parquet"
    command = _score_command(path, tmp_path / "big.npy", out, "--chunk-rows", 4)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    owner = tmp_path / "big.parquet.lock.owner"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and first.poll() is None:
        if owner.exists() and owner.read_text():
            break
        time.sleep(0.02)
    second = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120
    )
    if first.poll() is not None and second.returncode == 0:
        pytest.skip("the first run finished before the second started")
    assert second.returncode == EXIT_OUTPUT_LOCKED, second.stderr
    pattern = (
        rf"another run \(pid {first.pid}, started [0-9T:+-]+\) "
        rf"is writing {re.escape(str(out))}"
    )
    assert re.search(pattern, second.stderr), second.stderr
    assert "Traceback" not in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    frame = pd.read_parquet(out)
    np.testing.assert_array_equal(frame["id"], np.arange(len(big)))  # each id once
    np.testing.assert_allclose(
        frame["prediction"], model.predict(big), rtol=1e-5, atol=1e-6
    )
    assert not (tmp_path / "big.parquet.parts").exists()
    assert not owner.exists()


def test_interrupt_and_changed_input_are_reported(tmp_path, saved, monkeypatch):
    path, _, X, model = saved
    data = tmp_path / "X.npy"
    np.save(data, X)
    out = tmp_path / "o.parquet"
    original = score_module.run_chunk
    calls = []

    def interrupted(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(score_module, "run_chunk", interrupted)
    args = ("score", path, data, "-o", out, "--chunk-rows", 40, "--no-progress")
    result = invoke(*args)
    assert result.exit_code == EXIT_INTERRUPTED
    assert "Interrupted" in result.output and "Traceback" not in result.output
    monkeypatch.setattr(score_module, "run_chunk", original)
    stat = data.stat()
    changed = X.copy()
    changed[:10] *= -1.0  # chunk 0 only; same size, same mtime
    np.save(data, changed)
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "1 chunk(s) resumed" in result.output
    assert "1 chunk(s) rescored because their input changed" in result.output
    np.testing.assert_allclose(
        pd.read_parquet(out)["prediction"],
        model.predict(changed),
        rtol=1e-5,
        atol=1e-6,
    )


def _one_line_error(result, code=1):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def test_score_errors_are_one_line(tmp_path, saved, monkeypatch):
    path, data = saved[0], saved[1]
    garbage = tmp_path / "garbage.joblib"
    garbage.write_bytes(b"not a model")
    line = _one_line_error(
        invoke("score", garbage, data, "-o", tmp_path / "o.parquet", "--trust")
    )
    assert "garbage.joblib" in line or "model" in line.lower()
    line = _one_line_error(
        invoke("score", path, data, "-o", tmp_path / "missing" / "o.parquet")
    )
    assert "does not exist" in line
    result = invoke("score", path, tmp_path / "absent.npy", "-o", tmp_path / "o.csv")
    assert result.exit_code == 2 and "Traceback" not in result.output

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path))

    monkeypatch.setattr(writer_module, "_write_table", disk_full)
    line = _one_line_error(invoke("score", path, data, "-o", tmp_path / "o.parquet"))
    assert "No space left on device" in line
    monkeypatch.setattr(score_module, "run_chunk", lambda *a, **k: {}["unexpected"])
    line = _one_line_error(invoke("score", path, data, "-o", tmp_path / "o.parquet"))
    assert line == "Error: KeyError: 'unexpected'"
    with pytest.raises(KeyError):  # -vv: the traceback, for a bug report
        invoke("-vv", "score", path, data, "-o", tmp_path / "o.parquet")
