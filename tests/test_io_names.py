"""Names of model files and of their sidecars at the file-name length limit."""

import os

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

import skestimators
from skestimators._io import read_metadata, sidecar_path

NAME_MAX = 255  # bytes in a file name on ext4, XFS, APFS


@pytest.fixture(scope="module")
def model():
    X = np.arange(8.0).reshape(4, 2)
    return LinearRegression().fit(X, X.sum(axis=1)), X


def _named(n_bytes, suffix=".skops", character="m"):
    """A file name of exactly ``n_bytes`` bytes ending in ``suffix``."""
    width = len(character.encode())
    n_chars, pad = divmod(n_bytes - len(suffix), width)
    return "x" * pad + character * n_chars + suffix


@pytest.mark.parametrize("n_bytes", [250, 251, 253, 255])
@pytest.mark.parametrize("character", ["m", "模"])
def test_models_named_up_to_the_limit_are_saved(tmp_path, model, n_bytes, character):
    # A name of 251-255 bytes saved the model, then failed to rename the
    # sidecar into place (<name>.json was too long): a model without sidecar.
    estimator, X = model
    name = _named(n_bytes, character=character)
    assert len(os.fsencode(name)) == n_bytes
    path = skestimators.save(estimator, tmp_path / name, training_data=(X,))
    side = sidecar_path(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, side.name])
    assert len(os.fsencode(side.name)) <= NAME_MAX and side.name.endswith(".json")
    if n_bytes + len(".json") <= NAME_MAX:
        assert side.name == name + ".json"  # names that fit are kept as they were
    assert read_metadata(path)["file"] == name
    np.testing.assert_allclose(skestimators.load(path).predict(X), estimator.predict(X))


def test_shortened_sidecars_of_alike_names_stay_distinct(tmp_path, model):
    estimator, _ = model
    a, b = _named(255, ".joblib"), _named(254, ".joblib") + "z"
    assert a[:240] == b[:240] and a != b
    assert sidecar_path(tmp_path / a) != sidecar_path(tmp_path / b)
    for name in (a, b):
        skestimators.save(estimator, tmp_path / name, format="pickle")
    assert len(list(tmp_path.iterdir())) == 4
    for name in (a, b):
        assert read_metadata(tmp_path / name)["file"] == name
