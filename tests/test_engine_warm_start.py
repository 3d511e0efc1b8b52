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
