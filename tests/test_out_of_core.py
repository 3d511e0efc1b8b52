"""Out-of-core inputs: memory-mapped arrays are streamed, never loaded whole."""

import pickle
import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

from skestimators import (
    GalaxyZooRegressor,
    MultiInput,
    NetClassifier,
    NetRegressor,
    SpatioTemporalRegressor,
)
from skestimators._engine import check_memmap
from skestimators.exceptions import NonFinitePredictionError

from .conftest import FAST


def _memmap(tmp_path, name, array):
    path = tmp_path / f"{name}.npy"
    np.save(path, array)
    return np.load(path, mmap_mode="r")


@pytest.fixture
def table(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 6)).astype(np.float32)
    y = X[:, 0] - 2 * X[:, 1] + 0.1 * rng.normal(size=400)
    return X, _memmap(tmp_path, "X", X), y


def test_regressor_on_memmap_matches_in_memory(table):
    X, Xm, y = table
    params = dict(FAST, validation_fraction=0.2, early_stopping=True, patience=2)
    in_memory = NetRegressor(**params).fit(X, y)
    streamed = NetRegressor(**params).fit(Xm, y)
    # Same permutation, split and batches: identical training, bit for bit.
    assert_array_equal(
        in_memory.history_["valid_loss"], streamed.history_["valid_loss"]
    )
    assert_allclose(streamed.predict(Xm), in_memory.predict(X), rtol=0, atol=0)
    assert streamed.n_features_in_ == 6
    assert streamed.input_shape_ == (6,)


def test_named_inputs_mix_memmap_and_memory(tmp_path, two_inputs):
    spectra, aux, y = two_inputs
    mapped = _memmap(tmp_path, "spectra", spectra)
    clf_mem = NetClassifier(**FAST).fit(MultiInput(spectra=spectra, aux=aux), y)
    clf_map = NetClassifier(**FAST).fit(MultiInput(spectra=mapped, aux=aux), y)
    assert_array_equal(
        clf_map.predict_proba(MultiInput(spectra=mapped, aux=aux)),
        clf_mem.predict_proba(MultiInput(spectra=spectra, aux=aux)),
    )


def test_batches_never_alias_a_writable_map(tmp_path):
    from skestimators._engine._lazy import LazyRows

    path = tmp_path / "rw.npy"
    np.save(path, np.ones((10, 3), dtype=np.float32))
    rows = LazyRows(np.load(path, mmap_mode="r+"))
    rows[0:4].mul_(0)  # an in-place batch transform
    assert np.load(path)[:4].min() == 1.0


def test_partial_fit_on_memmap(table):
    X, Xm, y = table
    reg = NetRegressor(**dict(FAST, validation_fraction=None))
    for _ in range(2):
        reg.partial_fit(Xm, y)
    assert reg.n_iter_ == 2
    assert reg.predict(Xm[:10]).shape == (10,)


def _anon_rss():
    """Anonymous resident memory of this process (heap, torch tensors), bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon")


def _peak_anon_during(fn):
    """Peak growth of anonymous memory while ``fn`` runs (sampled every 1 ms).

    A file mapped and read counts as file-backed memory, not anonymous: only a
    copy of the data (NumPy or torch) makes this grow.
    """
    base, peak, done = _anon_rss(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _anon_rss() - base)
            time.sleep(0.001)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        result = fn()
    finally:
        done.set()
        thread.join()
    return result, peak[0]


def test_memmap_is_not_loaded_whole(tmp_path):
    # 48 MB on disk; batches of 64 rows are 0.25 MB. Loading the array (or a
    # float32 copy of it) shows in tracemalloc (NumPy copies) and in the
    # anonymous memory of the process (torch copies too).
    rng = np.random.RandomState(0)
    path = tmp_path / "big.npy"
    big = np.lib.format.open_memmap(
        path, mode="w+", dtype=np.float32, shape=(12000, 1000)
    )
    for start in range(0, 12000, 2000):
        big[start : start + 2000] = rng.normal(size=(2000, 1000))
    big.flush()
    del big
    y = rng.normal(size=12000)
    Xm = np.load(path, mmap_mode="r")
    reg = NetRegressor(
        module_params={"width": 8},
        **dict(FAST, max_epochs=1, batch_size=64, validation_fraction=0.1),
    )

    def fit_predict():
        return reg.fit(Xm, y).predict(Xm)

    reg.fit(Xm[:200], y[:200])  # warm up torch's allocator and threads
    tracemalloc.start()
    try:
        if sys.platform.startswith("linux"):
            pred, anon = _peak_anon_during(fit_predict)
            assert anon < 24 * 2**20, f"anonymous memory grew {anon / 2**20:.0f} MiB"
        else:
            pred = fit_predict()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert pred.shape == (12000,)
    # Prediction and validation batches hold up to 2**20 values (4 MiB here).
    assert peak < 12 * 2**20, f"peak traced memory {peak / 2**20:.1f} MiB"
    # The fitted estimator keeps no reference to the data.
    assert len(pickle.dumps(reg)) < 2**20


def test_scan_reports_the_chunk_with_nan(tmp_path, monkeypatch):
    from skestimators._engine import _lazy

    monkeypatch.setattr(_lazy, "_SCAN_BYTES", 10 * 4 * 4)  # 10 rows of 4 floats
    X = np.ones((95, 4), dtype=np.float32)
    X[57, 1] = np.nan
    with pytest.raises(ValueError, match=r"contains NaN \(memory-mapped rows 50-59\)"):
        NetRegressor(**FAST).fit(_memmap(tmp_path, "nan", X), np.zeros(95))
    X[57, 1] = 1.0
    X[94, 0] = np.inf
    with pytest.raises(ValueError, match=r"infinity \(memory-mapped rows 90-94\)"):
        NetRegressor(**FAST).fit(_memmap(tmp_path, "inf", X), np.zeros(95))


def test_memmap_layout_errors(tmp_path):
    with pytest.raises(ValueError, match="Expected 2D array"):
        NetRegressor(**FAST).fit(_memmap(tmp_path, "a", np.ones(10)), np.zeros(10))
    empty = _memmap(tmp_path, "b", np.ones((10, 0), dtype=np.float32))
    with pytest.raises(ValueError, match="0 feature"):
        NetRegressor(**FAST).fit(empty, np.zeros(10))
    text = _memmap(tmp_path, "c", np.array([["a", "b"]] * 10))
    with pytest.raises(ValueError, match="need real numbers"):
        NetRegressor(**FAST).fit(MultiInput(x=text), np.zeros(10))
    fortran = np.asfortranarray(np.ones((10, 3), dtype=np.float32))
    with pytest.warns(UserWarning, match="not contiguous on disk"):
        NetRegressor(**FAST).fit(_memmap(tmp_path, "d", fortran), np.zeros(10))


def test_uint8_channels_last_images_on_disk(tmp_path):
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(64, 8, 8, 3), dtype=np.uint8)
    y = rng.dirichlet(np.ones(3), size=64)
    y = np.hstack([y, np.zeros((64, 34))])
    mapped = _memmap(tmp_path, "images", images)
    params = dict(
        width=4, depth=1, head_width=8, max_epochs=2, batch_size=16, device="cpu",
        random_state=0, validation_fraction=None, tta=2,
    )  # fmt: skip
    in_memory = GalaxyZooRegressor(**params).fit(images, y)
    streamed = GalaxyZooRegressor(**params).fit(mapped, y)
    assert streamed.layout_ == "channels_last"
    assert_array_equal(streamed.predict(mapped), in_memory.predict(images))


def test_test_time_augmentation_reads_each_batch_once(tmp_path, monkeypatch):
    from skestimators._engine._lazy import LazyRows

    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(40, 3, 8, 8), dtype=np.uint8)
    y = rng.randint(0, 2, size=40)
    from skestimators import ImageClassifier

    clf = ImageClassifier(
        width=4, depth=1, head_width=8, max_epochs=1, batch_size=16, device="cpu",
        random_state=0, validation_fraction=None, tta=8, chirality_pairs=None,
    ).fit(images, y)  # fmt: skip
    reads = []
    read = LazyRows.__getitem__
    monkeypatch.setattr(
        LazyRows, "__getitem__", lambda self, key: reads.append(key) or read(self, key)
    )
    proba = clf.predict_proba(_memmap(tmp_path, "images", images))
    assert_allclose(proba, clf.predict_proba(images))
    assert len(reads) == 1  # 40 images: one prediction batch, read once for 8 views


def test_patches_on_disk(tmp_path):
    rng = np.random.RandomState(0)
    patches = rng.normal(size=(48, 3, 3, 3, 4)).astype(np.float32)
    y = patches[:, 0].mean(axis=(1, 2, 3)) + 1.0
    mapped = _memmap(tmp_path, "patches", patches)
    params = dict(
        width=4, depth=1, head_width=8, max_epochs=2, batch_size=16, lr=0.01,
        validation_fraction=None, device="cpu", random_state=0,
    )  # fmt: skip
    in_memory = SpatioTemporalRegressor(**params).fit(patches, y)
    streamed = SpatioTemporalRegressor(**params).fit(mapped, y)
    assert_array_equal(streamed.predict(mapped), in_memory.predict(patches))


def test_memmap_with_nan_names_the_rows(tmp_path):
    X = np.ones((50, 4), dtype=np.float32)
    X[37, 2] = np.nan
    Xm = _memmap(tmp_path, "nan", X)
    with pytest.raises(ValueError, match=r"Input 'X' contains NaN .*rows 0-49"):
        NetRegressor(**FAST).fit(Xm, np.zeros(50))
    X[37, 2] = np.inf
    spectra = _memmap(tmp_path, "inf", X)
    with pytest.raises(ValueError, match="'spectra' contains infinity"):
        NetRegressor(**FAST).fit(MultiInput(spectra=spectra), np.zeros(50))


def test_memmap_beyond_float32_is_named_not_a_divergence(tmp_path):
    # Finite in float64, infinite in the float32 batches: the fit "diverged".
    X = np.random.RandomState(0).normal(size=(50, 4))
    X[37, 2] = -1e39
    Xm = _memmap(tmp_path, "huge", X)
    with pytest.raises(ValueError, match=r"too large for float32.*1e\+39.*rows 0-49"):
        NetRegressor(**FAST).fit(Xm, np.zeros(50))
    X[37, 2] = 1e30  # large but within float32
    check_memmap("X", _memmap(tmp_path, "large", X))


def test_infinity_in_a_float64_memmap_is_named_as_infinity(tmp_path):
    X = np.ones((40, 3))
    X[5, 1] = np.inf
    with pytest.raises(ValueError, match="contains infinity"):
        check_memmap("X", _memmap(tmp_path, "inf64", X))


def test_complex_memmap_is_rejected(tmp_path):
    Xm = _memmap(tmp_path, "complex", np.ones((20, 3), dtype=np.complex64))
    with pytest.raises(ValueError, match="Complex data not supported"):
        NetRegressor(**FAST).fit(Xm, np.zeros(20))


def test_memmap_of_wrong_shape_at_predict(table, tmp_path):
    X, Xm, y = table
    reg = NetRegressor(**dict(FAST, max_epochs=1)).fit(Xm, y)
    wrong = _memmap(tmp_path, "wrong", np.ones((5, 7), dtype=np.float32))
    with pytest.raises(ValueError, match="7 features"):
        reg.predict(wrong)


@pytest.fixture(params=["host", "device"])
def checked_on(request, monkeypatch):
    """Where prediction batches are checked: on the host before the forward
    pass (the CPU), or as on a GPU, on the device after it."""
    if request.param == "device":
        monkeypatch.setattr(
            "skestimators._engine._inference._checks_on_device", lambda device: True
        )
    return request.param


def test_nan_at_predict_names_the_first_row(table, tmp_path, checked_on):
    # Prediction checks NaN/inf batch by batch (in memory and on disk).
    X, _, y = table
    reg = NetRegressor(**dict(FAST, max_epochs=1)).fit(X, y)
    bad = X.copy()
    bad[300, 1] = np.nan
    with pytest.raises(ValueError, match=r"'X' contains NaN \(first at row 300\)"):
        reg.predict(bad)
    with pytest.raises(ValueError, match=r"contains NaN \(first at row 300\)"):
        reg.predict(_memmap(tmp_path, "bad", bad))
    bad[300, 1] = -np.inf
    with pytest.raises(ValueError, match="contains infinity"):
        reg.predict(bad)
    # Large finite values whose sum overflows float32 are not mistaken for inf
    # inputs; the network's output overflows, and that is reported as such.
    huge = np.full((4, 6), 3e38, dtype=np.float32)
    with pytest.raises(NonFinitePredictionError, match="predicted NaN or inf") as e:
        reg.predict(huge)
    assert e.value.rows.tolist() == [0, 1, 2, 3]


def test_device_checks_name_the_first_bad_row(table, monkeypatch):
    """Checked on the device, batch by batch: the row named is the first bad
    one, the predictions are those of the host path, and large finite values
    that overflow a batch's sum are not refused."""
    X, _, y = table
    reg = NetRegressor(**dict(FAST, max_epochs=1)).fit(X, y)
    expected = reg.predict(X)
    monkeypatch.setattr(
        "skestimators._engine._inference._checks_on_device", lambda device: True
    )
    monkeypatch.setattr(
        "skestimators._engine._inference._predict_batch_size", lambda *args: 16
    )
    assert_allclose(reg.predict(X), expected, rtol=1e-6)
    bad = X.copy()
    bad[[301, 370], 2] = np.nan  # batches 18 and 23
    with pytest.raises(ValueError, match=r"'X' contains NaN \(first at row 301\)"):
        reg.predict(bad)
    bad = X.copy()
    bad[[0, 1], :] = 3e38  # an overflowing sum in the first batch only
    bad[len(X) - 1, 0] = -np.inf
    with pytest.raises(ValueError, match=rf"infinity .*first at row {len(X) - 1}\)"):
        reg.predict(bad)


class _RefusesNaN(torch.nn.Module):
    """A module that raises on non-finite inputs, as a module may."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(6, 1)

    def forward(self, X):
        if not torch.isfinite(X).all():
            raise RuntimeError("a raw error from inside the module")
        return self.linear(X)


def test_bad_input_is_named_before_the_module_raises(table, checked_on):
    X, _, y = table
    reg = NetRegressor(_RefusesNaN, **dict(FAST, max_epochs=1)).fit(X, y)
    bad = X.copy()
    bad[300, 1] = np.nan
    with pytest.raises(ValueError, match=r"'X' contains NaN \(first at row 300\)"):
        reg.predict(bad)


def test_batches_of_mixed_named_inputs_all_reach_the_device(tmp_path):
    # Whether to move a batch was decided from the first input only: an
    # in-memory input already on the GPU left a memmap input's rows on the
    # host. The "meta" device stands in for a GPU.
    import torch

    from skestimators._engine._batching import BatchIterator, TensorData
    from skestimators._engine._inference import _tensors

    rows = np.memmap(tmp_path / "aux.dat", dtype=np.float32, mode="w+", shape=(8, 3))
    X = _tensors({"spectrum": np.ones((8, 5), np.float32), "aux": rows})
    device = torch.device("meta")
    data = TensorData(X, torch.zeros(8)).to(device)  # as the engine places them
    Xb, (yb, _) = next(iter(BatchIterator(data, 4, shuffle=False, device=device)))
    assert {k: v.device.type for k, v in Xb.items()} == {
        "spectrum": "meta",
        "aux": "meta",
    }
    assert yb.device.type == "meta"
