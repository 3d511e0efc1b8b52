"""skestimators.save / load: pickle + JSON sidecar, integrity and portability."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skestimators
from skestimators import MultiInput, NetClassifier, NetRegressor
from skestimators._io import (
    ModelFileError,
    ModelVersionWarning,
    read_metadata,
    sidecar_path,
)
from skestimators._io._model_file import file_sha256

from .conftest import FAST


@pytest.fixture(scope="module")
def table():
    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.normal(size=(120, 4)), columns=["a", "b", "c", "d"])
    y = (X["a"] + X["b"] > 0).astype(int).to_numpy()
    return X, y


@pytest.fixture(scope="module")
def pipeline(table):
    X, y = table
    return make_pipeline(StandardScaler(), NetClassifier(**FAST)).fit(X, y)


def test_sidecar_contents(tmp_path, pipeline, table):
    X, y = table
    path = skestimators.save(
        pipeline,
        tmp_path / "clf.joblib",
        cv_scores={"test_accuracy": [0.8, 0.9]},
        training_data=(X, y),
    )
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["sha256"] == file_sha256(path)
    assert set(meta["versions"]) == {
        "skestimators",
        "torch",
        "sklearn",
        "numpy",
        "python",
    }
    assert meta["versions"]["torch"] == torch.__version__
    assert meta["device"] == "cpu"
    assert meta["created_at"].endswith("+00:00")
    assert meta["input"]["kind"] == "array"
    assert meta["input"]["inputs"]["X"] == {
        "shape": [4],
        "dtype": "float64",
        "columns": ["a", "b", "c", "d"],
    }
    assert meta["training_data"]["n_samples"] == 120
    assert len(meta["training_data"]["X_sha256"]) == 64
    assert meta["cv_scores"]["test_accuracy"]["mean"] == pytest.approx(0.85)
    assert meta["targets"]["classes"] == [0, 1]
    assert meta["final_estimator"].endswith("NetClassifier")


def test_layout_read_from_fitted_pipeline(tmp_path, pipeline):
    # Without training data, the first step's feature_names_in_ define the input.
    meta = read_metadata(skestimators.save(pipeline, tmp_path / "m.joblib"))
    entry = meta["input"]["inputs"]["X"]
    assert entry["columns"] == ["a", "b", "c", "d"] and meta["input"]["exact"]
    assert meta["training_data"] is None and meta["cv_scores"] is None


def test_layout_of_named_inputs(tmp_path, two_inputs):
    spectra, aux, y = two_inputs
    X = MultiInput(spectra=spectra, aux=pd.DataFrame(aux, columns=list("pqrs")))
    model = NetClassifier(**FAST).fit(X, y[:, 0])
    meta = read_metadata(skestimators.save(model, tmp_path / "m.joblib"))
    assert meta["input"]["kind"] == "named"
    assert meta["input"]["inputs"]["spectra"]["shape"] == [12, 3]
    assert meta["input"]["inputs"]["aux"]["columns"] == list("pqrs")


def test_round_trip_predicts_identically(tmp_path, pipeline, table):
    X, _ = table
    path = skestimators.save(pipeline, tmp_path / "clf.joblib")
    loaded = skestimators.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), pipeline.predict_proba(X))


def test_tampered_pickle_is_refused(tmp_path, pipeline, monkeypatch):
    path = skestimators.save(pipeline, tmp_path / "clf.joblib")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    unpickled = []
    monkeypatch.setattr("joblib.load", lambda *a, **k: unpickled.append(a))
    with pytest.raises(ModelFileError, match="does not match its sidecar"):
        skestimators.load(path)
    assert not unpickled  # refused before unpickling


def test_missing_sidecar_needs_trust(tmp_path, pipeline):
    path = skestimators.save(pipeline, tmp_path / "clf.joblib")
    sidecar_path(path).unlink()
    with pytest.raises(ModelFileError, match="has no sidecar"):
        skestimators.load(path)
    assert hasattr(skestimators.load(path, trust=True), "predict")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        skestimators.load(tmp_path / "nope.joblib")


@pytest.mark.parametrize("library", ["skestimators", "torch", "sklearn"])
def test_version_mismatch_warns(tmp_path, pipeline, library):
    path = skestimators.save(pipeline, tmp_path / "clf.joblib")
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    meta["versions"][library] = "0.0.1"
    side.write_text(json.dumps(meta))
    with pytest.warns(ModelVersionWarning, match=f"{library} 0.0.1"):
        skestimators.load(path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a CPU-only machine")
def test_gpu_model_loads_on_cpu_quietly(tmp_path, table):
    X, y = table
    model = NetRegressor(**FAST).fit(X.to_numpy(), y.astype(float))
    expected = model.predict(X.to_numpy())
    model.net_.device = "cuda"  # as if trained on a GPU
    path = skestimators.save(model, tmp_path / "gpu.joblib")
    assert read_metadata(path)["device"] == "cuda"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = skestimators.load(path)
        pred = loaded.predict(X.to_numpy())
    assert loaded.device_.type == "cpu"
    np.testing.assert_allclose(pred, expected, rtol=1e-6)


def test_references_to_main_warn(tmp_path, table, monkeypatch):
    X, y = table
    main = sys.modules["__main__"]
    Scaler = type("Scaler", (StandardScaler,), {"__module__": "__main__"})
    monkeypatch.setattr(main, "Scaler", Scaler, raising=False)
    model = make_pipeline(Scaler(), NetClassifier(**FAST)).fit(X, y)
    with pytest.warns(UserWarning, match=r"defined in __main__"):
        skestimators.save(model, tmp_path / "main.joblib")


def test_fresh_process_scores_identically(tmp_path, pipeline, table):
    X, _ = table
    path = skestimators.save(pipeline, tmp_path / "clf.joblib")
    np.save(tmp_path / "X.npy", X.to_numpy())
    script = textwrap.dedent(
        f"""
        import numpy as np, pandas as pd, skestimators
        model = skestimators.load({str(path)!r})
        X = pd.DataFrame(np.load({str(tmp_path / "X.npy")!r}), columns=list("abcd"))
        np.save({str(tmp_path / "pred.npy")!r}, model.predict_proba(X))
        """
    )
    subprocess.run(
        [sys.executable, "-c", script],
        check=True,
        cwd=tmp_path,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    np.testing.assert_array_equal(
        np.load(tmp_path / "pred.npy"), pipeline.predict_proba(X)
    )


def test_bad_training_data_argument(tmp_path, pipeline):
    with pytest.raises(ValueError, match="training_data"):
        skestimators.save(pipeline, tmp_path / "m.joblib", training_data="nope")
