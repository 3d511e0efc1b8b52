"""The validation split of continuing fits (``warm_start``) without a seed."""

import pickle

import numpy as np
import pytest
from sklearn.datasets import make_regression

from skestimators import NetRegressor, load, save


@pytest.fixture
def recorded_splits(monkeypatch):
    """The validation rows of each fit, in the order of the fits."""
    from skestimators._engine import _base

    seen = []
    original = _base.validation_indices

    def record(*args, **kwargs):
        split = original(*args, **kwargs)
        seen.append(None if split is None else np.sort(split[1]))
        return split

    monkeypatch.setattr(_base, "validation_indices", record)
    return seen


@pytest.mark.parametrize("random_state", [None, np.random.RandomState(0)])
def test_unseeded_warm_start_keeps_the_validation_split(recorded_splits, random_state):
    # Without an integer random_state each continuing fit drew a new split:
    # rows validated on in the first fit were trained on in the next ones,
    # and early stopping then monitored rows the network had learnt.
    X, y = make_regression(40, 3, random_state=0)
    reg = NetRegressor(
        max_epochs=2, warm_start=True, validation_fraction=0.25, device="cpu",
        random_state=random_state,
    )  # fmt: skip
    for _ in range(3):
        reg.fit(X, y)
    first = recorded_splits[0]
    assert all(np.array_equal(first, valid) for valid in recorded_splits[1:])


@pytest.mark.parametrize("how", ["pickle", "safe"])
def test_unseeded_split_is_kept_through_model_files(recorded_splits, how, tmp_path):
    X, y = make_regression(40, 3, random_state=0)
    reg = NetRegressor(
        max_epochs=2, warm_start=True, validation_fraction=0.25, device="cpu"
    ).fit(X, y)
    if how == "pickle":
        reg = pickle.loads(pickle.dumps(reg))
    else:
        reg = load(save(reg, tmp_path / "reg.skops", format="safe"))
    reg.fit(X, y)
    assert np.array_equal(recorded_splits[0], recorded_splits[1])


def test_unseeded_fresh_fits_still_draw_new_splits(recorded_splits):
    X, y = make_regression(40, 3, random_state=0)
    reg = NetRegressor(max_epochs=2, validation_fraction=0.25, device="cpu")
    for _ in range(6):
        reg.fit(X, y)
    assert len({tuple(valid) for valid in recorded_splits}) > 1


def test_a_network_without_a_recorded_split_keeps_its_next_one(recorded_splits):
    # A network of an older model file has no recorded split seed: its first
    # warm fit drew a split and every later one drew another.
    X, y = make_regression(40, 3, random_state=0)
    reg = NetRegressor(max_epochs=1, validation_fraction=0.25, device="cpu").fit(X, y)
    del reg._module_spec["split_seed"]
    reg.set_params(warm_start=True)
    reg.fit(X, y)
    reg.fit(X, y)
    assert np.array_equal(recorded_splits[1], recorded_splits[2])


def test_the_split_of_a_changed_int_seed_is_the_one_kept(recorded_splits):
    # random_state 0, then 1 (a new split, as asked), then None: the last
    # split is kept, not the first fit's.
    X, y = make_regression(40, 3, random_state=0)
    reg = NetRegressor(
        max_epochs=1, validation_fraction=0.25, device="cpu", random_state=0
    ).fit(X, y)
    reg.set_params(warm_start=True, random_state=1).fit(X, y)
    reg.set_params(random_state=None).fit(X, y)
    assert not np.array_equal(recorded_splits[0], recorded_splits[1])
    assert np.array_equal(recorded_splits[1], recorded_splits[2])
