"""skestimators.save / load: skops or pickle + JSON sidecar, integrity, safety."""

import copy
import io
import json
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import skestimators
from skestimators import (
    ModelFileError,
    ModelFileNotFoundError,
    ModelVersionWarning,
    MultiInput,
    NetClassifier,
    NetRegressor,
    UntrustedTypeError,
)
from skestimators._io import (
    _atomic,
    _model_file,
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
        "dtypes": ["float64"] * 4,
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
    path = skestimators.save(pipeline, tmp_path / "clf.joblib", format="pickle")
    loaded = skestimators.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), pipeline.predict_proba(X))


def test_tampered_pickle_is_refused(tmp_path, pipeline, monkeypatch):
    path = skestimators.save(pipeline, tmp_path / "clf.joblib", format="pickle")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    unpickled = []
    monkeypatch.setattr("joblib.load", lambda *a, **k: unpickled.append(a))
    with pytest.raises(ModelFileError, match="does not match its sidecar"):
        skestimators.load(path)
    assert not unpickled  # refused before unpickling


def test_missing_sidecar_needs_trust(tmp_path, pipeline):
    path = skestimators.save(pipeline, tmp_path / "clf.joblib", format="pickle")
    sidecar_path(path).unlink()
    with pytest.raises(ModelFileError, match="has no sidecar"):
        skestimators.load(path)
    assert hasattr(skestimators.load(path, trust=True), "predict")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        skestimators.load(tmp_path / "nope.joblib")


@pytest.mark.parametrize("library", ["skestimators", "torch", "sklearn"])
def test_version_mismatch_warns(tmp_path, pipeline, library):
    path = skestimators.save(pipeline, tmp_path / "clf.joblib", format="pickle")
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
    path = skestimators.save(model, tmp_path / "gpu.joblib", format="pickle")
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
        skestimators.save(model, tmp_path / "main.joblib", format="pickle")


def test_fresh_process_scores_identically(tmp_path, pipeline, table):
    X, _ = table
    path = skestimators.save(pipeline, tmp_path / "clf.joblib", format="pickle")
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


def test_bad_training_data_argument(tmp_path, pipeline, table):
    with pytest.raises(ValueError, match="training_data"):
        skestimators.save(pipeline, tmp_path / "m.joblib", training_data="nope")
    # Data the model was not fitted on: the sidecar recorded its columns, and
    # scoring then asked for a column the model never read.
    X, y = table
    wider = X.assign(extra=0.0)
    with pytest.raises(ModelFileError, match=r"columns .*'extra'\].* fitted on"):
        skestimators.save(pipeline, tmp_path / "m.joblib", training_data=(wider, y))
    with pytest.raises(ModelFileError, match=r"shape \(2,\).* fitted on \(4,\)"):
        skestimators.save(
            pipeline, tmp_path / "m.joblib", training_data=(X.to_numpy()[:, :2],)
        )
    assert not any(tmp_path.iterdir())  # refused before anything was written


# -- the file is read once: what is checked is what is loaded -----------------------


class _Payload:
    """Runs ``touch <marker>`` when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def small_model():
    X = np.random.RandomState(0).normal(size=(30, 3))
    return make_pipeline(StandardScaler(), LinearRegression()).fit(X, X @ [1, 2, 3])


def test_file_swapped_after_check_is_never_unpickled(
    tmp_path, small_model, monkeypatch
):
    marker = tmp_path / "pwned"
    path = skestimators.save(small_model, tmp_path / "m.joblib", format="pickle")
    read = _model_file._read_bytes

    def read_then_swap(p):
        data = read(p)
        # The file on disk is replaced right after it was read and checked.
        p.write_bytes(pickle.dumps(_Payload(marker)))
        return data

    monkeypatch.setattr(_model_file, "_read_bytes", read_then_swap)
    loaded = skestimators.load(path)
    X = np.ones((2, 3))
    np.testing.assert_array_equal(loaded.predict(X), small_model.predict(X))
    assert not marker.exists()
    with pytest.raises(ModelFileError, match="does not match its sidecar"):
        skestimators.load(path)  # the swapped file itself is refused
    assert not marker.exists()


# -- save validates its argument and never leaves a model without its sidecar -------


@pytest.mark.parametrize("bad", [{}, None, [1, 2], LinearRegression])
def test_save_refuses_what_is_not_an_estimator(tmp_path, bad):
    with pytest.raises(ModelFileError, match="expects a fitted scikit-learn"):
        skestimators.save(bad, tmp_path / "m.joblib")
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_an_unfitted_estimator(tmp_path):
    with pytest.raises(NotFittedError):
        skestimators.save(make_pipeline(StandardScaler()), tmp_path / "m.joblib")
    assert list(tmp_path.iterdir()) == []


def test_failed_save_leaves_nothing_and_keeps_the_old_pair(
    tmp_path, small_model, monkeypatch
):
    path = skestimators.save(small_model, tmp_path / "m.joblib", format="pickle")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken(*args, **kwargs):
        raise ModelFileError("disk gone")

    monkeypatch.setattr(_model_file, "input_layout", broken)
    with pytest.raises(ModelFileError, match="disk gone"):
        skestimators.save(small_model, path, format="pickle")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    monkeypatch.undo()
    assert hasattr(skestimators.load(path), "predict")


@pytest.mark.parametrize(
    "found, message",
    [
        ("skestimators-model/2", "newer skestimators, upgrade it"),
        ("something-else/7", "format 'something-else/7'"),
        (None, "format None"),
    ],
)
def test_sidecar_of_another_format_is_refused(tmp_path, small_model, found, message):
    # The format entry was written but never read: a file of a newer layout
    # loaded without a word.
    path = skestimators.save(small_model, tmp_path / "m.skops")
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    if found is None:
        del meta["format"]
    else:
        meta["format"] = found
    side.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match=message):
        skestimators.load(path)


def test_long_file_names_save_and_load(tmp_path, small_model):
    # The temporary names added ~20-55 characters to the file's own: a legal
    # name of 245 characters could not be saved, and the clean-up's own
    # "File name too long" hid the error.
    path = tmp_path / ("m" * 239 + ".skops")  # its sidecar: 250 characters
    saved = skestimators.save(small_model, path)
    X = np.ones((2, 3))
    np.testing.assert_allclose(
        skestimators.load(saved).predict(X), small_model.predict(X)
    )
    leftover = _atomic.temporary_name(path)
    dead = leftover.name.replace(f".{os.getpid()}.", ".999999999.")
    leftover.with_name(dead).touch()
    assert len(_atomic.remove_stale_temporaries(path)) == 1
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [path.name, path.name + ".json"]


@pytest.mark.parametrize("character", ["模", "é", "😀"])
def test_long_non_ascii_file_names_save_and_load(tmp_path, small_model, character):
    # Names were cut to 150 characters, not bytes: the temporary name of a
    # legal sidecar name of 251 bytes took 270 and save failed.
    size = len(character.encode())
    stem = character * ((245 - len(".skops")) // size)
    path = tmp_path / (stem + ".skops")  # its sidecar: up to 250 bytes
    saved = skestimators.save(small_model, path)
    X = np.ones((2, 3))
    np.testing.assert_allclose(
        skestimators.load(saved).predict(X), small_model.predict(X)
    )
    leftover = _atomic.temporary_name(sidecar_path(path))
    dead = leftover.name.replace(f".{os.getpid()}.", ".999999999.")
    leftover.with_name(dead).touch()
    assert len(_atomic.remove_stale_temporaries(sidecar_path(path))) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        path.name,
        path.name + ".json",
    ]


@pytest.mark.parametrize("character", ["m", "é", "模", "😀"])
def test_temporary_names_of_legal_names_are_legal(tmp_path, character):
    size = len(character.encode())
    for n_bytes in range(200, 256):
        path = tmp_path / (character * (n_bytes // size))
        temporary = _atomic.temporary_name(path, ".npy")
        assert len(os.fsencode(temporary.name)) <= 255
        temporary.touch()  # the file system takes it
        temporary.unlink()


def test_layout_records_the_dtype_of_each_column(tmp_path):
    # A DataFrame of int and float columns was recorded only as "mixed".
    X = pd.DataFrame({"n": [1, 2, 3], "x": [0.5, 1.5, 2.5]})
    model = LinearRegression().fit(X, [1, 2, 3])
    meta = read_metadata(
        skestimators.save(model, tmp_path / "m.skops", training_data=(X,))
    )
    assert meta["input"]["inputs"]["X"] == {
        "shape": [2],
        "dtype": "mixed",
        "columns": ["n", "x"],
        "dtypes": ["int64", "float64"],
    }


def test_unpicklable_model_is_a_model_file_error(tmp_path):
    model = make_pipeline(FunctionTransformer(lambda X: X)).fit(np.ones((3, 2)))
    with pytest.raises(ModelFileError, match="cannot be pickled"):
        skestimators.save(model, tmp_path / "m.joblib", format="pickle")
    assert list(tmp_path.iterdir()) == []


def test_model_file_errors_are_public():
    # Code catching them imports them from the package, not from a private module.
    names = {"ModelFileNotFoundError", "UntrustedTypeError"}
    assert names <= set(skestimators.__all__)
    assert issubclass(skestimators.UntrustedTypeError, skestimators.ModelFileError)
    with pytest.raises(skestimators.ModelFileNotFoundError):
        skestimators.load("no/such/model.joblib")


def test_missing_folder_and_file_are_model_file_errors(tmp_path, small_model):
    with pytest.raises(ModelFileNotFoundError, match="does not exist"):
        skestimators.save(small_model, tmp_path / "no" / "m.joblib")
    with pytest.raises(ModelFileError, match="does not exist"):
        skestimators.load(tmp_path / "nope.joblib")


def test_bad_format_argument(tmp_path, small_model):
    with pytest.raises(ModelFileError, match="format must be"):
        skestimators.save(small_model, tmp_path / "m.joblib", format="onnx")
    assert list(tmp_path.iterdir()) == []


def test_unreadable_pickle_is_a_model_file_error(tmp_path, small_model):
    path = skestimators.save(small_model, tmp_path / "m.joblib", format="pickle")
    sidecar_path(path).unlink()
    path.write_bytes(b"definitely not a pickle")
    with pytest.raises(ModelFileError, match="Cannot unpickle"):
        skestimators.load(path, trust=True)


# -- the safe format -----------------------------------------------------------------


class Custom(TransformerMixin, BaseEstimator):
    """A transformer that is not trusted by default."""

    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X):
        return np.asarray(X) * 2.0


class Evil(Custom):
    """Runs ``touch <marker>`` when its state is restored."""

    def __init__(self, marker=None):
        self.marker = marker

    def __setstate__(self, state):
        os.system(f"touch {state['marker']}")
        self.__dict__.update(state)


def test_safe_format_is_the_default_for_plain_models(tmp_path, small_model):
    path = skestimators.save(small_model, tmp_path / "m.skops")
    assert read_metadata(path)["serialization"] == "skops"
    assert path.read_bytes()[:2] == b"PK"  # a skops zip, not a pickle
    X = np.random.RandomState(1).normal(size=(5, 3))
    np.testing.assert_array_equal(
        skestimators.load(path).predict(X), small_model.predict(X)
    )
    sidecar_path(path).unlink()  # trust=True: no sidecar, still the safe loader
    np.testing.assert_array_equal(
        skestimators.load(path, trust=True).predict(X), small_model.predict(X)
    )


def test_networks_are_saved_in_the_safe_format(tmp_path, pipeline, table):
    X, _ = table
    path = skestimators.save(pipeline, tmp_path / "net.skops")
    assert read_metadata(path)["serialization"] == "skops"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert "skestimators/weights/0.safetensors" in names
    loaded = skestimators.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), pipeline.predict_proba(X))
    pd.testing.assert_frame_equal(loaded[-1].history_, pipeline[-1].history_)
    assert loaded[-1].device_ == torch.device("cpu")


def _network_ensembles():
    from sklearn.ensemble import StackingRegressor, VotingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.multioutput import MultiOutputRegressor

    from skestimators.uncertainty import DeepEnsembleRegressor

    def net(seed=0):
        return NetRegressor(max_epochs=2, device="cpu", random_state=seed)

    return {
        "deep_ensemble": (DeepEnsembleRegressor(net(), n_estimators=2), 1, 2),
        "multi_output": (MultiOutputRegressor(net()), 2, 2),
        "stacking": (StackingRegressor([("r", Ridge())], net(), cv=2), 1, 1),
        "voting": (VotingRegressor([("a", net(0)), ("b", net(1))]), 1, 2),
    }


@pytest.mark.parametrize("name", list(_network_ensembles()))
def test_networks_inside_ensembles_are_saved_safely(tmp_path, name):
    # Networks in an estimators_ list or a final_estimator_ were missed:
    # skops then failed on the torch module and the model became a pickle.
    model, n_targets, n_networks = _network_ensembles()[name]
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 3)).astype("float32")
    y = np.c_[X[:, 0], X[:, 1]][:, :n_targets].squeeze()
    model.fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback to a pickle
        path = skestimators.save(model, tmp_path / "model.skops")
    with zipfile.ZipFile(path) as archive:
        weights = [n for n in archive.namelist() if "weights/" in n]
    assert len(weights) == n_networks  # each network once (voting lists them twice)
    np.testing.assert_array_equal(skestimators.load(path).predict(X), model.predict(X))


def _tiny_networks():
    from skestimators import (
        GalaxyZooRegressor,
        ImageClassifier,
        SpatioTemporalRegressor,
        SpectraAuxClassifier,
    )
    from skestimators.datasets import (
        make_exoplanet,
        make_galaxy_classes,
        make_galaxy_zoo,
        make_soc,
    )

    fast = dict(max_epochs=2, device="cpu", random_state=0)
    image = dict(width=4, depth=1, head_width=8, **fast)
    rng = np.random.RandomState(0)
    table = rng.normal(size=(60, 3)).astype("float32")
    spectra = make_exoplanet(60, random_state=0)
    soc = make_soc(40, n_years=2, window=3, random_state=0)[:2]
    return [
        (NetRegressor(**fast), (table, table @ [1.0, 2.0, 0.0])),
        (NetClassifier(**fast), (table, (table[:, 0] > 0).astype(int))),
        (SpectraAuxClassifier(**fast), spectra),
        (ImageClassifier(**image), make_galaxy_classes(60, size=32, random_state=0)),
        (GalaxyZooRegressor(**image), make_galaxy_zoo(60, size=32, random_state=0)),
        (SpatioTemporalRegressor(**fast), soc),
    ]


def test_a_safe_file_rebuilds_the_network_as_fitted(tmp_path):
    # Parameters set after fit belong to the next fit: the file rebuilds the
    # fitted network (its architecture, dropout, augmentation), and loading
    # keeps them for that next fit.
    from skestimators import GalaxyZooRegressor
    from skestimators.datasets import make_galaxy_zoo

    X, y = make_galaxy_zoo(40, size=16, random_state=0)
    params = dict(width=4, depth=1, head_width=8, max_epochs=1, random_state=0)
    model = GalaxyZooRegressor(**params, device="cpu").fit(X, y)
    model.set_params(width=8, dropout=0.05, augment=False)
    loaded = skestimators.load(skestimators.save(model, tmp_path / "m.skops"))
    assert loaded.get_params()["width"] == 8 and loaded.dropout == 0.05
    dropouts = [
        [m.p for m in est.net_.module_.modules() if isinstance(m, torch.nn.Dropout)]
        for est in (model, loaded)
    ]
    assert dropouts[0] == dropouts[1] and 0.5 in dropouts[1]
    assert loaded.net_.batch_transform is not None  # trained with augmentation
    results = []
    for est in (model, loaded):
        torch.manual_seed(0)  # the same Monte Carlo dropout masks
        results.append(est.set_params(mc_samples=3).predict(X[:4], return_std=True))
    for got, expected in zip(results[1], results[0]):
        np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize(
    "estimator, data", _tiny_networks(), ids=lambda v: type(v).__name__
)
def test_every_network_round_trips_in_the_safe_format(tmp_path, estimator, data):
    X, y = data
    model = clone(estimator).fit(X, y)
    path = skestimators.save(model, tmp_path / "m.skops", format="safe")
    loaded = skestimators.load(path)
    assert type(loaded.net_.module_) is type(model.net_.module_)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    # Training continues from the loaded weights and optimizer state.
    if hasattr(loaded, "partial_fit"):
        loaded.partial_fit(X, y)
        assert loaded.n_iter_ == model.n_iter_ + 1
        assert list(loaded.history_.index) == [1, 2, 3]


@pytest.mark.parametrize("schedule", ["cosine", "step", "onecycle", "plateau"])
def test_schedule_resumes_after_the_safe_format(tmp_path, schedule):
    # The optimizer is loaded at its initial rate and the schedule resumes
    # where it stopped: replayed to the loaded epoch, or on the validation
    # losses of the history (plateau, told to cut the rate unless the loss
    # halves, so that it does cut it). A one-cycle schedule is stepped every
    # batch and cannot run past its end: give it room for the extra epoch.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3)).astype("float32")
    y = X @ [1.0, 2.0, 0.0]
    params = {
        "onecycle": {"total_steps": 100},
        "plateau": {"patience": 0, "threshold": 0.5},
    }.get(schedule)
    model = NetRegressor(
        max_epochs=4,
        lr_scheduler=schedule,
        lr_scheduler_params=params,
        validation_fraction=0.2 if schedule == "plateau" else None,
        device="cpu",
        random_state=0,
    ).fit(X, y)
    assert model.net_.optimizer_.param_groups[0]["lr"] != pytest.approx(model.lr)
    loaded = skestimators.load(
        skestimators.save(model, tmp_path / "m.skops", format="safe")
    )
    loaded.partial_fit(X, y)
    assert loaded.n_iter_ == model.n_iter_ + 1
    lr = loaded.net_.optimizer_.param_groups[0]["lr"]
    model.partial_fit(X, y)  # the same schedule, continued in memory
    assert lr == pytest.approx(model.net_.optimizer_.param_groups[0]["lr"])
    np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=1e-6)


def test_plateau_schedule_skips_partial_fit_epochs_after_the_safe_format(tmp_path):
    # partial_fit epochs have no validation loss (NaN in history_): the
    # schedule skipped them in memory and skips them when replayed. Read as
    # "no progress", they would cut the rate.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3)).astype("float32")
    y = X @ [1.0, 2.0, 0.0]
    model = NetRegressor(
        max_epochs=3,
        lr_scheduler="plateau",
        lr_scheduler_params={"patience": 1},
        validation_fraction=0.2,
        device="cpu",
        random_state=0,
    ).fit(X, y)
    for _ in range(3):
        model.partial_fit(X, y)
    assert model.history_["valid_loss"].isna().sum() == 3
    loaded = skestimators.load(
        skestimators.save(model, tmp_path / "m.skops", format="safe")
    )
    for est in (model, loaded):
        est.partial_fit(X, y)
    assert loaded.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(model.lr)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "rmsprop", "sgd"])
@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
def test_training_continues_exactly_after_the_safe_format(tmp_path, optimizer, how):
    # The optimizer's state (Adam's moments, its step count) is stored:
    # training after loading is the training that would have followed in
    # memory, weights included. A fresh Adam would take steps of about lr
    # from the loaded weights and end elsewhere.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3)).astype("float32")
    y = X @ [1.0, 2.0, 0.0]
    model = NetRegressor(
        max_epochs=3, optimizer=optimizer, device="cpu", random_state=0
    ).fit(X, y)
    loaded = skestimators.load(
        skestimators.save(model, tmp_path / "m.skops", format="safe")
    )
    original = model.net_.optimizer_.state_dict()
    restored = loaded.net_.optimizer_.state_dict()
    assert restored["state"].keys() == original["state"].keys()
    for index, slots in original["state"].items():
        for name, value in slots.items():
            np.testing.assert_array_equal(restored["state"][index][name], value)
    for est in (model, loaded):
        if how == "partial_fit":
            est.partial_fit(X, y)
        else:
            est.set_params(warm_start=True, max_epochs=2).fit(X, y)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    if optimizer == "adam":
        fresh = skestimators.load(tmp_path / "m.skops")
        fresh.net_.optimizer_.state.clear()  # as if no state had been stored
        if how == "partial_fit":
            fresh.partial_fit(X, y)
        else:
            fresh.set_params(warm_start=True, max_epochs=2).fit(X, y)
        assert np.abs(fresh.predict(X) - model.predict(X)).max() > 1e-4


def test_optimizer_state_that_is_not_plain_loads_a_fresh_optimizer(tmp_path):
    # A value that is neither a tensor nor a number (here set by hand, as a
    # custom optimizer might) is not stored: the network loads, with an
    # empty optimizer state, and trains on.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3)).astype("float32")
    y = X @ [1.0, 2.0, 0.0]
    model = NetRegressor(max_epochs=2, device="cpu", random_state=0).fit(X, y)
    first = next(iter(model.net_.optimizer_.state.values()))
    first["note"] = object()
    with pytest.warns(UserWarning, match="starts a fresh optimizer"):
        path = skestimators.save(model, tmp_path / "m.skops", format="safe")
    assert read_metadata(path)["serialization"] == "skops"
    loaded = skestimators.load(path)
    assert not loaded.net_.optimizer_.state
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    loaded.partial_fit(X, y)
    assert loaded.n_iter_ == model.n_iter_ + 1


def test_network_of_a_gpu_is_rebuilt_on_the_cpu(table):
    X, y = table
    model = NetClassifier(**FAST).fit(X, y)
    copy_ = NetClassifier(**FAST).set_params(device="auto")
    copy_.__dict__.update(
        {k: v for k, v in vars(model).items() if k not in ("net_", "device_")}
    )
    copy_._restore_network(
        model._network_spec(), model.net_.module_.state_dict(), "cuda:0"
    )
    assert copy_.device_ == torch.device("cpu")
    np.testing.assert_array_equal(copy_.predict_proba(X), model.predict_proba(X))


def test_network_without_a_recorded_shape_falls_back_to_pickle(tmp_path, table):
    X, y = table
    model = NetClassifier(**FAST).fit(X, y)
    del model._module_spec  # as fitted by an older version
    with pytest.warns(UserWarning, match="saved as a pickle: .*fit it again") as seen:
        path = skestimators.save(model, tmp_path / "old.joblib")
    assert seen[0].filename == __file__  # the caller's line, not the library's
    assert read_metadata(path)["serialization"] == "pickle"
    with pytest.raises(ModelFileError, match="cannot be saved in the safe format"):
        skestimators.save(model, tmp_path / "old.skops", format="safe")
    assert not (tmp_path / "old.skops").exists()


@pytest.fixture(scope="module")
def boosting():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(X, y), X


def test_boosting_is_safe_by_default(tmp_path, boosting):
    model, X = boosting
    path = skestimators.save(model, tmp_path / "hgb.skops")
    assert read_metadata(path)["serialization"] == "skops"
    loaded = skestimators.load(path)  # no trusted=: the trees are checked
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("left", 10**6, "left child indices are out of range"),
        ("right", 0, "right child indices are out of range"),
        ("feature_idx", 99, "feature the model does not have"),
    ],
)
def test_crafted_trees_are_refused(tmp_path, boosting, field, value, message):
    model, _ = boosting
    crafted = copy.deepcopy(model)
    nodes = crafted._predictors[0][0].nodes
    nodes[field][np.flatnonzero(nodes["is_leaf"] == 0)[0]] = value
    path = skestimators.save(crafted, tmp_path / "evil.skops", format="safe")
    with pytest.raises(ModelFileError, match=message):
        skestimators.load(path)


def test_untrusted_type_is_refused_and_named(tmp_path):
    X = np.random.RandomState(0).normal(size=(20, 2))
    model = make_pipeline(Custom(), LinearRegression()).fit(X, X[:, 0])
    with pytest.warns(UserWarning, match="trusted="):
        auto = skestimators.save(model, tmp_path / "auto.joblib")
    assert read_metadata(auto)["serialization"] == "pickle"
    path = skestimators.save(model, tmp_path / "m.skops", format="safe")
    name = f"{__name__}.Custom"
    with pytest.raises(UntrustedTypeError, match=name):
        skestimators.load(path)
    for trusted in ([name], [Custom]):
        loaded = skestimators.load(path, trusted=trusted)
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_safe_loader_runs_no_code_from_the_file(tmp_path):
    marker = tmp_path / "pwned"
    evil = make_pipeline(Evil(marker=str(marker))).fit(np.ones((3, 2)))
    path = skestimators.save(evil, tmp_path / "evil.skops", format="safe")
    with pytest.raises(UntrustedTypeError, match=f"{__name__}.Evil"):
        skestimators.load(path)
    assert not marker.exists()
    # A pickle whose sidecar claims the safe format is not unpickled either.
    path.write_bytes(pickle.dumps(_Payload(marker)))
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    meta["sha256"] = file_sha256(path)
    side.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="not a valid skops file"):
        skestimators.load(path)
    assert not marker.exists()


class _Plain:
    """An object whose skops entry is renamed below."""


def _renamed(data, module, name):
    """A skops file whose root object claims the type ``module.name``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(buffer, "w") as zout:
        for info in zin.infolist():
            content = zin.read(info.filename)
            if info.filename == "schema.json":
                schema = json.loads(content)
                schema["__module__"], schema["__class__"] = module, name
                content = json.dumps(schema).encode()
            zout.writestr(info, content)
    return buffer.getvalue()


def test_package_types_that_would_run_code_are_not_trusted(tmp_path):
    # Every estimator class of the package was trusted: a crafted file that
    # named EngineNet ran its payload at load(path), without trusted=.
    # skorch's NeuralNet.__setstate__ unpickles the bytes under
    # __cuda_dependent_attributes__ with a full unpickler.
    module, name = "skestimators._engine._skorch", "EngineNet"
    from skops.io import dumps

    marker = tmp_path / "pwned"
    crafted = _Plain()
    crafted.__dict__.update(
        __cuda_dependent_attributes__=pickle.dumps({"x": _Payload(marker)}),
        device="cpu",
    )
    path = tmp_path / "evil.skops"
    path.write_bytes(_renamed(dumps(crafted), module, name))
    sidecar_path(path).write_text(
        json.dumps(
            {
                "format": "skestimators-model/1",
                "serialization": "skops",
                "sha256": file_sha256(path),
            }
        )
    )
    with pytest.raises(UntrustedTypeError, match=f"{module}.{name}"):
        skestimators.load(path)
    assert not marker.exists()


def _object_array(items):
    array = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        array[i] = item
    return array


@pytest.mark.parametrize("crafted", [False, True])
def test_trees_stored_as_an_object_array_are_refused(tmp_path, boosting, crafted):
    # skops can store ``_predictors`` as a 1-D object array of per-iteration
    # lists, which scikit-learn iterates like the list: its trees used to go
    # unchecked, and a crafted child index crashed the process at predict.
    model, _ = boosting
    evil = copy.deepcopy(model)
    if crafted:
        nodes = evil._predictors[0][0].nodes
        nodes["left"][np.flatnonzero(nodes["is_leaf"] == 0)[0]] = 10**7
    evil._predictors = _object_array(evil._predictors)
    path = skestimators.save(evil, tmp_path / "evil.skops", format="safe")
    with pytest.raises(ModelFileError, match="not a list of lists of TreePredictor"):
        skestimators.load(path)


@pytest.mark.parametrize(
    "hide",
    [
        lambda tree: _object_array([tree]),
        lambda tree: {tree: 1},
        lambda tree: frozenset([tree]),
        lambda tree: ((tree,),),
    ],
    ids=["object array", "dict key", "frozenset", "tuple"],
)
def test_a_tree_hidden_outside_a_model_is_found(boosting, hide):
    from skestimators._io._trees import check_tree_predictors

    model, _ = boosting
    tree = copy.deepcopy(model._predictors[0][0])
    holder = make_pipeline(StandardScaler())
    holder.hidden = hide(tree)
    with pytest.raises(ValueError, match="outside any model"):
        check_tree_predictors(holder)
    check_tree_predictors(model)  # the model's own trees pass


# -- a safe file is never unpickled ---------------------------------------------------


_DROP = object()


def _rewrite(path, data, **sidecar):
    """Replace a model file and update its sidecar to match (an attacker's move);
    a sidecar entry given as ``_DROP`` is removed."""
    path.write_bytes(data)
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    meta.update(sha256=file_sha256(path), **sidecar)
    meta = {k: v for k, v in meta.items() if v is not _DROP}
    side.write_text(json.dumps(meta))


def test_a_pickle_named_skops_is_never_unpickled(tmp_path, small_model):
    marker = tmp_path / "pwned"
    path = skestimators.save(small_model, tmp_path / "model.skops")
    _rewrite(path, pickle.dumps(_Payload(marker)), serialization="pickle")
    with pytest.raises(ModelFileError, match="named '.skops' is never unpickled"):
        skestimators.load(path)
    sidecar_path(path).unlink()
    with pytest.raises(ModelFileError, match="named '.skops' is never unpickled"):
        skestimators.load(path, trust=True)
    assert not marker.exists()


def test_a_zip_is_never_unpickled(tmp_path, small_model, monkeypatch):
    safe = skestimators.save(small_model, tmp_path / "safe.skops")
    path = skestimators.save(small_model, tmp_path / "m.joblib", format="pickle")
    _rewrite(path, safe.read_bytes(), serialization="pickle")
    unpickled = []
    monkeypatch.setattr("joblib.load", lambda *a, **k: unpickled.append(a))
    with pytest.raises(ModelFileError, match="zip file .* never unpickled"):
        skestimators.load(path)
    assert not unpickled


def test_a_sidecar_without_serialization_is_refused(tmp_path, small_model):
    marker = tmp_path / "pwned"
    path = skestimators.save(small_model, tmp_path / "m.joblib", format="pickle")
    _rewrite(path, pickle.dumps(_Payload(marker)), serialization=_DROP)
    with pytest.raises(ModelFileError, match="no 'serialization' entry"):
        skestimators.load(path)
    assert not marker.exists()


def test_a_pickle_is_not_saved_under_a_skops_name(tmp_path, small_model):
    with pytest.raises(ModelFileError, match=r"e\.g\. m\.joblib"):
        skestimators.save(small_model, tmp_path / "m.skops", format="pickle")
    X = np.random.RandomState(0).normal(size=(20, 2))
    untrusted = make_pipeline(Custom(), LinearRegression()).fit(X, X[:, 0])
    with pytest.raises(ModelFileError, match="cannot hold a pickle"):
        skestimators.save(untrusted, tmp_path / "m.skops")  # format="auto"
    assert list(tmp_path.iterdir()) == []
    # A pickle under another name still loads, as documented.
    path = skestimators.save(small_model, tmp_path / "m.joblib", format="pickle")
    assert read_metadata(path)["serialization"] == "pickle"
    assert hasattr(skestimators.load(path), "predict")


# -- the sidecar's content ------------------------------------------------------------


@pytest.mark.parametrize("returned", ["return_estimator", "return_indices"])
def test_cv_scores_keep_the_numbers_of_cross_validate(tmp_path, small_model, returned):
    from sklearn.model_selection import cross_validate

    X = np.random.RandomState(0).normal(size=(30, 3))
    scores = cross_validate(
        LinearRegression(), X, X @ [1, 2, 3], cv=3, **{returned: True}
    )
    path = skestimators.save(small_model, tmp_path / "m.skops", cv_scores=scores)
    stored = read_metadata(path)["cv_scores"]
    assert set(stored) == {"test_score", "fit_time", "score_time"}
    assert stored["test_score"]["values"] == pytest.approx(list(scores["test_score"]))


def test_a_failed_fold_is_written_as_valid_json(tmp_path, small_model):
    scores = {"test_score": [0.5, float("nan"), 0.7], "fit_time": [0.1, 0.1, 0.1]}
    path = skestimators.save(small_model, tmp_path / "m.skops", cv_scores=scores)

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    raw = json.loads(sidecar_path(path).read_text(), parse_constant=refuse)
    assert raw["cv_scores"]["test_score"]["values"] == [0.5, None, 0.7]
    assert raw["cv_scores"]["test_score"]["mean"] is None
    stored = read_metadata(path)["cv_scores"]["test_score"]
    assert stored["values"][0] == 0.5 and np.isnan(stored["values"][1])
    assert np.isnan(stored["mean"]) and np.isnan(stored["std"])
    assert read_metadata(path)["cv_scores"]["fit_time"]["mean"] == pytest.approx(0.1)
    with pytest.raises(ModelFileError, match="cv_scores must be"):
        skestimators.save(small_model, tmp_path / "n.skops", cv_scores="high")
    assert not (tmp_path / "n.skops").exists()


def test_sparse_training_data(tmp_path):
    import scipy.sparse as sp

    from skestimators._io._layout import data_fingerprint

    X = sp.random(30, 5, density=0.3, format="csr", random_state=0)
    y = np.random.RandomState(0).normal(size=30)
    model = LinearRegression().fit(X, y)
    path = skestimators.save(model, tmp_path / "m.skops", training_data=(X, y))
    assert read_metadata(path)["training_data"]["n_samples"] == 30
    doubled = X.copy()
    doubled.data = doubled.data * 2
    fingerprint = data_fingerprint(X)["X_sha256"]
    assert data_fingerprint(doubled)["X_sha256"] != fingerprint
    assert data_fingerprint(X[::-1])["X_sha256"] != fingerprint  # rows reordered
    # The same matrix in another sparse format has the same fingerprint.
    assert data_fingerprint(X.tocsc())["X_sha256"] == fingerprint
    assert data_fingerprint(X.toarray())["X_sha256"] != fingerprint  # dense


# -- every load error is a ModelFileError ---------------------------------------------


def _zip(**entries):
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in entries.items():
            archive.writestr(name.replace("_", "."), text)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "schema",
    [
        "[1, 2]",
        '{"__class__": 3}',
        '{"__class__": "Ridge", "__module__": "sklearn.linear_model._ridge", '
        '"__loader__": "ObjectNode", "content": 5, "protocol": 2, '
        '"_skops_version": "0.16"}',
    ],
)
def test_a_malformed_skops_schema_is_a_model_file_error(tmp_path, small_model, schema):
    path = skestimators.save(small_model, tmp_path / "m.skops")
    _rewrite(path, _zip(schema_json=schema))
    with pytest.raises(ModelFileError, match="not a valid skops file"):
        skestimators.load(path)
    sidecar_path(path).unlink()
    with pytest.raises(ModelFileError, match="not a valid skops file"):
        skestimators.load(path, trust=True)


def test_an_empty_model_file_is_named_so(tmp_path, small_model):
    for name, format in [("m.skops", "safe"), ("m.joblib", "pickle")]:
        path = skestimators.save(small_model, tmp_path / name, format=format)
        _rewrite(path, b"")
        with pytest.raises(ModelFileError, match="is empty"):
            skestimators.load(path)


@pytest.mark.parametrize("versions", [["torch"], "torch", 3])
def test_a_sidecar_with_damaged_versions_is_refused(tmp_path, small_model, versions):
    path = skestimators.save(small_model, tmp_path / "m.skops")
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    meta["versions"] = versions
    side.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="'versions' entry"):
        skestimators.load(path)


def test_trusted_must_be_a_list(tmp_path):
    X = np.random.RandomState(0).normal(size=(20, 2))
    model = make_pipeline(Custom(), LinearRegression()).fit(X, X[:, 0])
    path = skestimators.save(model, tmp_path / "m.skops", format="safe")
    name = f"{__name__}.Custom"
    with pytest.raises(ModelFileError, match=r"pass a list, e\.g\. trusted=\["):
        skestimators.load(path, trusted=name)
    with pytest.raises(ModelFileError, match="type names"):
        skestimators.load(path, trusted=[3])
    assert hasattr(skestimators.load(path, trusted=(name,)), "predict")


def test_concurrent_saves_leave_a_matching_pair(tmp_path, monkeypatch):
    # Two saves to one path at once: without serialized renames, save A could
    # rename its model, save B both files, then A its sidecar (model B with
    # sidecar A, which load refuses). A pause between the renames forces it.
    import threading
    import time

    path = tmp_path / "model.skops"
    real_replace = os.replace
    first_rename = threading.Event()

    def slow_replace(src, dst):
        real_replace(src, dst)
        if str(dst) == str(path) and not first_rename.is_set():
            first_rename.set()
            time.sleep(0.5)  # the other save runs now

    monkeypatch.setattr(os, "replace", slow_replace)
    models = [LinearRegression().fit([[0.0], [1.0]], [0.0, slope]) for slope in (1, 2)]
    errors = []

    def save(model):
        try:
            skestimators.save(model, path)
        except Exception as exc:  # reported below
            errors.append(exc)

    first = threading.Thread(target=save, args=(models[0],))
    first.start()
    assert first_rename.wait(10)
    second = threading.Thread(target=save, args=(models[1],))
    second.start()
    first.join()
    second.join()
    assert not errors
    loaded = skestimators.load(path)  # the hash matches: one pair, not a mix
    assert round(loaded.coef_[0], 6) in (1.0, 2.0)


def test_save_removes_temporaries_of_killed_saves_only(tmp_path):
    from skestimators._io import temporary_name

    path = tmp_path / "model.skops"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        stdout=subprocess.PIPE,
        text=True,
    )
    dead_pid = int(proc.communicate()[0])  # exited: a killed save's pid
    live = temporary_name(path)  # this process's: a save in progress
    killed = live.with_name(live.name.replace(f".{os.getpid()}.", f".{dead_pid}."))
    other_host = tmp_path / f".model.skops.otherhost.{dead_pid}.0123abcd"
    killed_side = tmp_path / killed.name.replace("model.skops", "model.skops.json")
    for leftover in (live, killed, other_host, killed_side):
        leftover.write_bytes(b"partial")
    skestimators.save(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), path)
    assert not killed.exists() and not killed_side.exists()
    assert live.exists() and other_host.exists()


def test_save_flushes_files_and_renames_to_disk(tmp_path, monkeypatch):
    # Files are told apart by inode, which a rename keeps.
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = skestimators.save(
        LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), tmp_path / "m.skops"
    )
    monkeypatch.undo()
    for written in (path, sidecar_path(path), path.parent):  # and the renames
        assert os.stat(written).st_ino in synced


def _wrapped_layouts():
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.model_selection import GridSearchCV

    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(60, 3, 4)).astype("float32"), rng.uniform(1, 2, 60)
    net = NetRegressor(**FAST)
    ttr = TransformedTargetRegressor(net, func=np.log, inverse_func=np.exp)
    search = GridSearchCV(ttr, {"regressor__lr": [1e-3]}, cv=2)
    return X, y, {"TransformedTargetRegressor": ttr, "GridSearchCV": search}


@pytest.mark.parametrize("wrapper", ["TransformedTargetRegressor", "GridSearchCV"])
def test_layout_of_arrays_inside_a_wrapper(tmp_path, wrapper):
    # The wrapper's n_features_in_ counts the first axis only: a wrapped
    # soc_pipeline() was saved as taking (6,) for (6, 5, 5, 2) patches, and
    # the scorer refused its own training patches.
    from skestimators._io._layout import input_layout

    X, y, models = _wrapped_layouts()
    model = models[wrapper].fit(X, y)
    layout = input_layout(model)
    assert layout["inputs"]["X"]["shape"] == [3, 4] and layout["exact"]
    meta = read_metadata(skestimators.save(model, tmp_path / "m.joblib"))
    assert meta["input"]["inputs"]["X"]["shape"] == [3, 4]


def test_layout_of_a_wrapper_whose_estimator_sees_fewer_columns():
    # RFE's estimator_ is fitted on the selected columns: not the input.
    from sklearn.feature_selection import RFE

    from skestimators._io._layout import input_layout

    rng = np.random.RandomState(0)
    model = RFE(LinearRegression(), n_features_to_select=2)
    model.fit(rng.normal(size=(30, 5)), rng.normal(size=30))
    assert input_layout(model)["inputs"]["X"]["shape"] == [5]


@pytest.mark.parametrize("previous", [True, False])
def test_failed_sidecar_rename_leaves_the_previous_model(
    tmp_path, monkeypatch, previous
):
    # The model is renamed first: when the sidecar's rename then fails, the
    # previous model (and its sidecar) are put back, or no model is left.
    path = tmp_path / "model.skops"
    fit = [[0.0], [1.0]]
    if previous:
        skestimators.save(LinearRegression().fit(fit, [0.0, 1.0]), path)
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst) == str(sidecar_path(path)):
            raise PermissionError(13, "Permission denied", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(ModelFileError, match="Permission denied"):
        skestimators.save(LinearRegression().fit(fit, [0.0, 2.0]), path)
    monkeypatch.undo()
    if previous:
        assert round(skestimators.load(path).coef_[0], 6) == 1.0
    else:
        assert not path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == (
        ["model.skops", "model.skops.json"] if previous else []
    )
