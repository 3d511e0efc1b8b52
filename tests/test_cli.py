"""The ``skestimators`` command line (click), in process and as a real process."""

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.base import BaseEstimator, TransformerMixin

import skestimators
from skestimators import NetRegressor
from skestimators.cli import (
    EXIT_INTERRUPTED,
    EXIT_INVALID_ROWS,
    EXIT_OUTPUT_LOCKED,
    EXOPLANET_VARIANTS,
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
    assert (
        "3 row(s) not scored" in result.output
        and "invalid ids: 7, 8, 9." in result.output
    )
    assert out.exists() and (tmp_path / "pred.csv.invalid.csv").exists()


def test_bad_cell_of_a_model_trained_on_mixed_dtypes_is_an_invalid_row(tmp_path):
    # Trained on int and float columns (dtype "mixed" in the sidecar), one
    # text cell failed the whole job (exit code 1) instead of one row.
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"age": np.arange(20), "weight": np.linspace(50, 90, 20)})
    y = np.arange(20) % 2
    path = skestimators.save(
        LogisticRegression().fit(X, y), tmp_path / "m.skops", training_data=(X, y)
    )
    bad = X.astype({"weight": object})
    bad.loc[2, "weight"] = "n/a?"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    out = tmp_path / "pred.csv"
    result = invoke("score", path, tmp_path / "bad.csv", "-o", out, "--no-progress")
    assert result.exit_code == EXIT_INVALID_ROWS, result.output
    assert "1 row(s) not scored" in result.output and "invalid ids: 2." in result.output
    assert pd.read_csv(out)["proba_1"].notna().sum() == 19


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
    assert (
        "2 row(s) not scored" in result.output
        and "invalid ids: 3, 50." in result.output
    )
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
    meta = json.loads(result.stdout)  # the verdict goes to stderr
    assert meta["input"]["inputs"]["X"]["shape"] == [8]
    assert result.stderr.startswith(f"Check passed: {path} matches the SHA-256")
    assert "versions match" in result.stderr
    assert "Check" not in invoke("info", path).output  # no verdict without --check
    copy = tmp_path / "copy.joblib"
    copy.write_bytes(path.read_bytes() + b"!")
    (tmp_path / "copy.joblib.json").write_text(
        path.with_name(path.name + ".json").read_text()
    )
    result = invoke("info", copy, "--check")
    assert result.exit_code == 1 and "does not match" in result.output
    assert _one_line_error(result).startswith("Error: Check failed: ")


@pytest.fixture(scope="module")
def exoplanet_folder(tmp_path_factory):
    """A folder of 120 simulated planets, as ``train DATA`` reads it."""
    from skestimators.datasets import make_exoplanet

    X, y = make_exoplanet(120, random_state=0)
    folder = tmp_path_factory.mktemp("exoplanet")
    np.save(folder / "spectra.npy", X["spectra"])
    X["aux"].to_csv(folder / "auxiliary.csv", index=False)
    y.to_csv(folder / "targets.csv", index=False)
    return folder


def test_train_exoplanet_recipe(tmp_path, exoplanet_folder):
    folder = exoplanet_folder
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
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("Cross-validating exoplanet 'conv1d' on 120 planets")
    assert re.fullmatch(
        r"2-fold CV in [0-9.]+ s \(mean ± spread over the folds; higher is better\): "
        r"water_auc [0-9.]+ ± [0-9.]+, cloud_auc [0-9.]+ ± [0-9.]+, "
        r"accuracy [0-9.]+ ± [0-9.]+\.",
        lines[1],
    )
    assert re.fullmatch(
        rf"Trained exoplanet 'conv1d' on 120 planets in [0-9.]+ s \(network: "
        rf"[12] of at most 2 epochs, best valid_loss [0-9.]+\); saved "
        rf"{re.escape(str(out))} and exo\.joblib\.json\.",
        lines[-1],
    )
    assert "train_loss" not in result.output  # epochs only with -v
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


def test_train_names_the_sidecar_it_wrote(tmp_path, exoplanet_folder):
    # The summary named <output>.json, not the shortened sidecar of a long name.
    from skestimators._io import sidecar_path

    out = tmp_path / ("m" * 246 + ".joblib")  # 253 bytes
    args = ["-o", out, "--variant", "conv1d", "--max-epochs", 1, "--device", "cpu"]
    result = invoke("train", "exoplanet", exoplanet_folder, *args)
    assert result.exit_code == 0, result.output
    side = sidecar_path(out)
    assert side.is_file() and side.name != out.name + ".json"
    assert result.output.rstrip().endswith(f"saved {out} and {side.name}.")


@pytest.mark.parametrize("where", ["before", "after"])
def test_train_verbose_shows_every_epoch(tmp_path, exoplanet_folder, where):
    args = ["train", "exoplanet", exoplanet_folder, "-o", tmp_path / "m.joblib"]
    args += ["--variant", "conv1d", "--max-epochs", 3, "--device", "cpu"]
    args = ["-v", *args] if where == "before" else [*args, "-v"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "Trained exoplanet 'conv1d'" in result.stderr
    # The engine's progress bar over the epochs, with the losses (tqdm redraws
    # it at most 10 times a second, so these tiny epochs may not all show).
    assert re.search(r"SpectraAuxClassifier: +0%\|.*\| 0/3 \[", result.stderr)
    assert re.search(
        r"\| 3/3 \[.*train_loss=[0-9.]+, valid_loss=[0-9.]+", result.stderr
    )
    assert result.stdout == ""  # progress and summary go to stderr


def test_exoplanet_variants_are_the_recipes():
    from skestimators.recipes._exoplanet import VARIANTS

    assert EXOPLANET_VARIANTS == VARIANTS


def test_help_lists_choices_inputs_and_explains_every_option():
    text = invoke("train", "--help").output
    assert "{exoplanet}" in text and "Recipes: exoplanet" in text
    assert "[" + "|".join(EXOPLANET_VARIANTS) + "]" in text
    for name in ("spectra.npy", "auxiliary.csv", "targets.csv", "builtin"):
        assert name in text
    assert "star_mass_kg" in text and "water and cloud" in text
    demo_help = invoke("demo", "--help").output
    assert "blend, best, conv1d and dense_raw" in demo_help
    assert "exoplanet.skops" in invoke("--help").output  # next steps
    for command in main.commands.values():
        for option in command.params:
            if isinstance(option, click.Option):
                assert option.help, f"{command.name} {option.opts} has no help"
    assert all(option.help for option in main.params)


def test_demo_labels_its_table_and_names_the_best_variant(monkeypatch):
    from skestimators import datasets
    from skestimators.datasets import make_exoplanet

    data = make_exoplanet(90, random_state=1)
    monkeypatch.setattr(datasets, "load_exoplanet", lambda: data)
    result = invoke("demo", "--epochs", 1, "--folds", 2, "--n-jobs", 1)
    assert result.exit_code == 0, result.output
    progress = result.stderr.splitlines()
    assert progress[0].startswith(
        "Exoplanet water/cloud: 90 planets, 4 variants x 2 folds = 8 fits"
    )
    done = [line for line in progress if "fits done" in line]
    assert [line.split()[1] for line in done] == [f"{i}/8" for i in range(1, 9)]
    assert re.search(r"1/8 fits done, [0-9]+ s elapsed \(blend, fold 0", done[0])
    assert re.fullmatch(r"Done: 8 fits in [0-9]+ s\.", progress[-1])
    out = result.stdout.splitlines()
    header = out[0].split()
    assert header == ["water", "AUC", "cloud", "AUC", "accuracy", "seconds/fit"]
    assert [line.split()[0] for line in out[2:6]] == [
        "blend",
        "best",
        "conv1d",
        "dense_raw",
    ]
    assert "Mean ± standard deviation over the 2 folds" in result.stdout
    for label in ("water AUC", "cloud AUC", "accuracy", "seconds/fit"):
        assert any(line.lstrip().startswith(label + " ") for line in out[7:])
    best = re.search(r"^Best: (\w+) \(accuracy ([0-9.]+) ±", result.stdout, re.M)
    assert best is not None, result.stdout
    name, accuracy = best.groups()
    table_accuracy = {
        line.split()[0]: float(line.split()[7]) for line in out[2:6]
    }  # columns: variant, water AUC (3 tokens), cloud AUC (3 tokens), accuracy
    assert float(accuracy) == max(table_accuracy.values())
    assert table_accuracy[name] == float(accuracy)
    assert out[-1] == (
        f"  skestimators train exoplanet builtin --variant {name} "
        f"-o exoplanet-{name}.skops"
    )


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
    child = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
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


def _interrupt_after(monkeypatch, n_chunks):
    """Make the scoring job stop as by Ctrl-C after ``n_chunks`` chunks;
    return the original chunk function."""
    original = score_module.run_chunk
    calls = []

    def interrupted(*args, **kwargs):
        if len(calls) == n_chunks:
            raise KeyboardInterrupt
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(score_module, "run_chunk", interrupted)
    return original


def test_interrupt_names_the_parts_folder_of_a_long_output(
    tmp_path, saved, monkeypatch
):
    # The message named <output>.parts, where a name of 251-255 bytes has its
    # parts folder under a shortened name.
    from skestimators._io import companion_path

    path, data, _, _ = saved
    out = tmp_path / ("o" * 245 + ".parquet")  # 253 bytes
    parts = companion_path(out, ".parts")
    assert parts.name != out.name + ".parts"
    _interrupt_after(monkeypatch, 1)
    result = invoke("score", path, data, "-o", out, "--chunk-rows", 40, "--no-progress")
    assert result.exit_code == EXIT_INTERRUPTED
    assert f"kept in {parts};" in result.output, result.output
    assert parts.is_dir()


def test_interrupt_without_parts_says_nothing_was_written(tmp_path, saved, monkeypatch):
    # A map from rasters keeps no parts: the message promised a resume from
    # a parts folder that did not exist.
    import skestimators.scoring

    path, data, _, _ = saved

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(skestimators.scoring, "score", interrupted)
    out = tmp_path / "map.tif"
    result = invoke("score", path, data, "-o", out, "--no-progress")
    assert result.exit_code == EXIT_INTERRUPTED
    assert f"{out} was not written" in result.output, result.output
    assert "resume" not in result.output


def test_interrupt_while_importing_is_an_interruption(tmp_path, saved, monkeypatch):
    # Ctrl-C in the first half second (the imports) printed click's
    # "Aborted!" and exited 1, the code of an error.
    import types

    class Importing(types.ModuleType):
        def __getattr__(self, name):
            raise KeyboardInterrupt

    path, data, _, _ = saved
    monkeypatch.setitem(sys.modules, "skestimators.scoring", Importing("scoring"))
    out = tmp_path / "o.parquet"
    result = invoke("score", path, data, "-o", out, "--no-progress")
    assert result.exit_code == EXIT_INTERRUPTED
    assert f"Interrupted before scoring began: {out} was not written" in result.output


def test_interrupt_and_changed_input_are_reported(tmp_path, saved, monkeypatch):
    path, _, X, model = saved
    data = tmp_path / "X.npy"
    np.save(data, X)
    out = tmp_path / "o.parquet"
    original = _interrupt_after(monkeypatch, 2)
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


def _with_versions(tmp_path, saved, versions):
    """A copy of the saved model whose sidecar names other ``versions``."""
    path = saved[0]
    copy = tmp_path / "copy.joblib"
    copy.write_bytes(path.read_bytes())
    meta = json.loads(path.with_name(path.name + ".json").read_text())
    meta["versions"] = versions
    (tmp_path / "copy.joblib.json").write_text(json.dumps(meta))
    return copy


def test_version_problems_are_one_line(tmp_path, saved):
    # info --check printed a traceback for a damaged versions entry, and score
    # showed the version warning as Python prints it (file, line, source).
    copy = _with_versions(tmp_path, saved, "damaged")
    line = _one_line_error(invoke("info", copy, "--check"))
    assert line.startswith("Error: Check failed:") and "'versions' entry" in line
    copy = _with_versions(tmp_path, saved, {"torch": "0.0.1"})
    result = invoke("score", copy, saved[1], "-o", tmp_path / "p.csv")
    assert result.exit_code == 0, result.output
    warning = [line for line in result.stderr.splitlines() if "0.0.1" in line]
    assert len(warning) == 1 and warning[0].startswith("Warning: ")
    assert ".py:" not in result.stderr


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
    assert "No space left on the disk" in line and "free some space" in line
    monkeypatch.setattr(score_module, "run_chunk", lambda *a, **k: {}["unexpected"])
    line = _one_line_error(invoke("score", path, data, "-o", tmp_path / "o.parquet"))
    assert line == "Error: KeyError: 'unexpected'"
    with pytest.raises(KeyError):  # -vv: the traceback, for a bug report
        invoke("-vv", "score", path, data, "-o", tmp_path / "o.parquet")


def test_score_refuses_to_overwrite_its_input(tmp_path, saved):
    path, data = saved[0], saved[1]
    copy = tmp_path / "X.npy"
    copy.write_bytes(data.read_bytes())
    line = _one_line_error(invoke("score", path, copy, "-o", copy, "--no-progress"))
    assert line == f"Error: The output {copy} would overwrite the input {copy}; " + (
        "write it elsewhere."
    )
    assert copy.read_bytes() == data.read_bytes()


def test_score_names_the_line_of_a_malformed_csv_row(tmp_path, saved):
    path = saved[0]
    rows = ["1,2,3,4,5,6,7,8", "1,2,3,4,5,6,7,8", "1,2,3,4,5,6,7,8,9"]
    (tmp_path / "x.csv").write_text("a,b,c,d,e,f,g,h\n" + "\n".join(rows) + "\n")
    result = invoke("score", path, tmp_path / "x.csv", "-o", tmp_path / "o.csv")
    line = _one_line_error(result)
    assert line.endswith(
        "x.csv: line 4 has 9 fields, but the header has 8 (a decimal comma or an "
        "unquoted separator?); fix or remove that row."
    )
    assert not (tmp_path / "o.csv").exists()


def test_demo_never_names_a_variant_with_a_failed_fit_best():
    import pandas as pd

    from skestimators.cli._train import _demo_report

    rows = [
        (variant, 0, fold, metric, value, 1.0)
        for variant, accuracy in (("failed", [np.nan, 0.99]), ("fine", [0.8, 0.8]))
        for fold in (0, 1)
        for metric, value in (
            ("water_auc", 0.9), ("cloud_auc", 0.9), ("accuracy", accuracy[fold]),
        )
    ]  # fmt: skip
    results = pd.DataFrame(
        rows, columns=["variant", "repeat", "fold", "metric", "value", "fit_time"]
    )
    report = _demo_report(results, ["water", "cloud"], 2, 1, 90)
    assert "Best: fine (accuracy 0.800" in report
    everyone_failed = results.assign(value=np.nan)
    report = _demo_report(everyone_failed, ["water", "cloud"], 2, 1, 90)
    assert report.endswith(
        "Best: none, every variant had a fit that failed (see above)."
    )


def test_train_refuses_an_unwritable_output_or_one_fold_before_training(
    tmp_path, exoplanet_folder, monkeypatch
):
    from skestimators.cli import _train

    def no_data(data):  # loading the data would mean the checks came too late
        raise AssertionError("the data were read before the options were checked")

    monkeypatch.setattr(_train, "_exoplanet_data", no_data)
    cases = [
        (["-o", tmp_path / "no such folder" / "m.skops"], "does not exist"),
        (["-o", ""], "names no file"),
        (["-o", tmp_path / "m.skops", "--cv", 1], "1 fold cannot cross-validate"),
    ]
    for args, message in cases:
        result = invoke("train", "exoplanet", exoplanet_folder, *args)
        assert result.exit_code == 2, result.output
        assert message in result.output
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        result = invoke("train", "exoplanet", exoplanet_folder, "-o", locked / "m")
        assert result.exit_code == 2 and "is not writable" in result.output


def test_demo_reports_bad_arguments_and_failures_in_one_line(monkeypatch):
    # --n-jobs 0 and more folds than planets ended in raw tracebacks.
    from skestimators import datasets
    from skestimators.datasets import make_exoplanet

    data = make_exoplanet(30, random_state=1)
    monkeypatch.setattr(datasets, "load_exoplanet", lambda: data)
    result = invoke("demo", "--epochs", 1, "--folds", 2, "--n-jobs", 0)
    assert result.exit_code == 2 and "0 runs no fit" in result.output
    result = invoke("demo", "--epochs", 1, "--folds", 40, "--n-jobs", 1)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert re.search(r"Error: .*n_splits=40", result.output)


def test_an_error_with_details_is_one_line():
    # Every fit of a demo failing printed each fit's traceback in its line.
    from skestimators.cli._common import _message

    error = ValueError(
        "All 2 fits failed. The errors:\nvariant 'a', fold 0: ValueError: bad"
        "\n\nWhere each error was first raised:\nTraceback (most recent ...)"
    )
    assert _message(error) == (
        "All 2 fits failed. The errors: variant 'a', fold 0: ValueError: bad"
    )


def test_train_cross_validation_failure_is_one_line(tmp_path, exoplanet_folder):
    # A failed fold used to print scikit-learn's whole failure report, with
    # its tracebacks, as the error line (or record NaN scores and exit 0).
    result = invoke(
        "train", "exoplanet", exoplanet_folder, "--variant", "dense",
        "--max-epochs", 1, "--cv", 2, "--device", "cuda:7",
        "-o", tmp_path / "m.skops",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "fits failed" not in result.output
    assert "cuda:7" in result.output
    assert not (tmp_path / "m.skops").exists()
    # Values that name no device or seed are wrong usage, before the data.
    for option, value in [("--device", "bogus"), ("--random-state", -1)]:
        args = ("train", "exoplanet", exoplanet_folder, option, value)
        result = invoke(*args, "-o", tmp_path / "m.skops")
        assert result.exit_code == 2 and option in result.output


def test_score_crop_takes_none_or_pixels(tmp_path):
    # A model trained on whole images (crop=None) could not be scored as
    # trained: --crop took positive integers only.
    import click

    from skestimators.cli._score import _CROP

    assert _CROP.convert("none", None, None) is None
    assert _CROP.convert(" None ", None, None) is None
    assert _CROP.convert("150", None, None) == 150
    assert _CROP.convert("auto", None, None) == "auto"
    for bad in ("0", "-3", "big"):
        with pytest.raises(click.BadParameter, match="neither a positive number"):
            _CROP.convert(bad, None, None)
    model, images = tmp_path / "m.joblib", tmp_path / "images"
    result = CliRunner().invoke(
        main, ["score", str(model), str(images), "-o", "o.csv", "--crop", "0"]
    )
    assert result.exit_code == 2 and "neither a positive number" in result.output


class Clip(TransformerMixin, BaseEstimator):
    """A type of the user's own, not trusted by default."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.clip(X, -1, 1)


def test_safe_model_with_a_users_type_is_scored_with_trusted(tmp_path):
    # The command line had no way to trust a type: its error said to call
    # load(..., trusted=[...]), which a command-line user cannot.
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    X = pd.DataFrame(np.random.RandomState(0).normal(size=(30, 2)), columns=["a", "b"])
    model = make_pipeline(Clip(), LinearRegression()).fit(X, X["a"])
    path = skestimators.save(model, tmp_path / "m.skops", format="safe")
    X.to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "o.csv"
    refused = invoke("score", path, tmp_path / "in.csv", "-o", out, "--no-progress")
    name = f"{__name__}.Clip"
    assert refused.exit_code == 1
    assert name in refused.output and "--trusted TYPE" in refused.output
    args = ("score", path, tmp_path / "in.csv", "-o", out, "--no-progress")
    result = invoke(*args, "--trusted", name)
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(pd.read_csv(out)["prediction"], model.predict(X))


def test_a_models_warning_is_shown_once_not_per_chunk(tmp_path):
    # scikit-learn's "X does not have valid feature names" came once per chunk.
    from sklearn.linear_model import LinearRegression

    X = pd.DataFrame(np.random.RandomState(0).normal(size=(60, 2)), columns=["a", "b"])
    path = skestimators.save(
        LinearRegression().fit(X, X["a"]), tmp_path / "m.skops", training_data=(X,)
    )
    np.save(tmp_path / "in.npy", X.to_numpy())
    args = ("-o", tmp_path / "o.csv", "--chunk-rows", 10, "--no-progress")
    result = invoke("score", path, tmp_path / "in.npy", *args)
    assert result.exit_code == 0, result.output
    assert result.output.count("valid feature names") == 1, result.output


def test_train_refuses_outputs_that_would_destroy_files(
    tmp_path, exoplanet_folder, monkeypatch
):
    import shutil

    from skestimators.cli import _train

    folder = tmp_path / "planets"
    shutil.copytree(exoplanet_folder, folder)
    before = (folder / "auxiliary.csv").read_bytes()
    # The model replaced a training file (the next train read "not UTF-8").
    result = invoke("train", "exoplanet", folder, "-o", folder / "auxiliary.csv")
    assert result.exit_code == 2 and "is the training file" in result.output
    assert (folder / "auxiliary.csv").read_bytes() == before
    # A name too long for the folder failed after the whole fit.
    result = invoke("train", "exoplanet", folder, "-o", tmp_path / ("m" * 256))
    assert result.exit_code == 2 and "256 bytes long" in result.output

    # Ctrl-C printed click's "Aborted!" and exited 1, an error's code.
    def interrupted(*args):
        raise KeyboardInterrupt("interrupted after 3 epochs")

    monkeypatch.setattr(_train, "_train", interrupted)
    out = tmp_path / "m.skops"
    result = invoke("train", "exoplanet", folder, "-o", out)
    assert result.exit_code == EXIT_INTERRUPTED
    assert "Interrupted (interrupted after 3 epochs)" in result.output
    assert f"{out} was not written" in result.output


def test_save_refuses_the_sidecar_of_another_model(tmp_path, saved):
    # save(model, "a.skops.json") replaced a.skops's sidecar: a.skops could
    # no longer be checked or loaded.
    path, _, _, model = saved
    with pytest.raises(skestimators.ModelFileError, match="is the sidecar of"):
        skestimators.save(model, path.with_name(path.name + ".json"))
    skestimators.load(path)


def test_info_check_says_when_no_versions_were_recorded(tmp_path, saved):
    # It said "the installed versions match" of a sidecar without versions.
    import shutil

    path = tmp_path / "m.joblib"
    shutil.copy(saved[0], path)
    side = path.with_name(path.name + ".json")
    meta = json.loads(saved[0].with_name(saved[0].name + ".json").read_text())
    del meta["versions"]
    side.write_text(json.dumps(meta))
    result = invoke("info", path, "--check")
    assert result.exit_code == 0, result.output
    assert "records no versions to compare" in result.stderr


def test_train_says_builtin_is_the_bundled_data_beside_a_builtin_folder(
    tmp_path, exoplanet_folder, monkeypatch
):
    # A folder named builtin was silently passed over for the bundled planets.
    import shutil

    from skestimators.cli import _train

    monkeypatch.chdir(tmp_path)
    shutil.copytree(exoplanet_folder, tmp_path / "builtin")
    args = ["-o", tmp_path / "m.skops", "--variant", "conv1d", "--max-epochs", 1]
    result = invoke("train", "exoplanet", "./builtin", *args, "--device", "cpu")
    assert result.exit_code == 0 and "Note: 'builtin'" not in result.output
    assert "on 120 planets" in result.output
    monkeypatch.setattr(_train, "_train", lambda *a: None)  # the note, no fit
    result = invoke("train", "exoplanet", "builtin", *args)
    assert "for the folder named builtin here, give ./builtin" in result.output


def test_two_trains_of_one_output_do_not_both_run(tmp_path, exoplanet_folder):
    # Both exited 0 and both said "saved": the second model silently won.
    from skestimators._io import output_lock

    out = tmp_path / "m.skops"
    with output_lock(out):  # another run holds it
        result = invoke("train", "exoplanet", exoplanet_folder, "-o", out)
    assert result.exit_code == EXIT_OUTPUT_LOCKED
    assert "is writing" in result.output and not out.exists()


def test_train_interrupted_resumes_from_its_checkpoints(
    tmp_path, exoplanet_folder, monkeypatch
):
    # A killed or interrupted train started again from zero (hours lost).
    from skestimators._engine import _checkpoint
    from skestimators.cli import _train

    args = ["train", "exoplanet", exoplanet_folder, "--variant", "conv1d"]
    args += ["--max-epochs", 4, "--device", "cpu", "--cv", 2]
    whole = invoke(*args, "-o", tmp_path / "whole.skops")
    assert whole.exit_code == 0, whole.output

    write = _checkpoint.SaveCheckpoint.on_epoch_end
    epochs = []

    def ctrl_c_in_the_second_fold(self, net, **kwargs):
        write(self, net, **kwargs)
        epochs.append(len(net.history))
        if len(epochs) == 6:  # 4 epochs of fold 1, then 2 of fold 2
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(
        _checkpoint.SaveCheckpoint, "on_epoch_end", ctrl_c_in_the_second_fold
    )
    out, folder = tmp_path / "m.skops", tmp_path / "checkpoints"
    stopped = invoke(*args, "-o", out, "--checkpoint", folder)
    assert stopped.exit_code == EXIT_INTERRUPTED and not out.exists()
    assert f"resume from the checkpoints in {folder}" in stopped.output
    assert len(list(folder.iterdir())) == 2  # one run per fold so far

    monkeypatch.setattr(_checkpoint.SaveCheckpoint, "on_epoch_end", write)
    epochs.clear()
    resumed = invoke(*args, "-o", out, "--checkpoint", folder)
    assert resumed.exit_code == 0, resumed.output
    assert len(list(folder.iterdir())) == 3  # and the final fit's

    # The first fold was read back, the second trained its last 2 epochs.
    def scores(result):
        (line,) = [x for x in result.output.splitlines() if "-fold CV" in x]
        return line.split("better): ")[1]

    assert scores(resumed) == scores(whole)
    a, b = skestimators.load(tmp_path / "whole.skops"), skestimators.load(out)
    X = skestimators.datasets.load_exoplanet(exoplanet_folder)[0]
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    # The model file names no folder of this machine, nor does the blend's
    # (its fitted members kept it).
    assert not any(v for k, v in b.get_params().items() if k.endswith("__checkpoint"))
    args[args.index("conv1d")] = "blend"
    blend = tmp_path / "blend.skops"
    assert invoke(*args[:-2], "-o", blend, "--checkpoint", folder).exit_code == 0
    networks = _train._fitted_networks(skestimators.load(blend))
    assert networks and all(net.checkpoint is None for net in networks)
