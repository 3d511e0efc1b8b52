import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    StratifiedKFold,
    cross_val_score,
    train_test_split,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skestimators import MultiInput, NetClassifier
from skestimators.preprocessing import InputTransformer


def make(n=10):
    return MultiInput(
        a=np.arange(n * 2).reshape(n, 2),
        b=pd.DataFrame({"x": np.arange(n), "y": np.arange(n) * 2.0}),
    )


def test_basic_interface():
    X = make()
    assert len(X) == 10 and X.shape == (10,)
    assert X.keys() == ["a", "b"]
    assert X.shapes == {"a": (10, 2), "b": (10, 2)}
    assert isinstance(X["b"], pd.DataFrame)
    assert X[2].shapes["a"] == (1, 2)
    assert X[-1]["a"].tolist() == [[18, 19]]
    assert len(X[np.arange(10) % 2 == 0]) == 5
    assert X[2:5]["b"]["x"].tolist() == [2, 3, 4]
    assert X[[1, 3], ...]["a"].tolist() == [[2, 3], [6, 7]]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({}, ValueError, "at least one"),
        ({"a": np.zeros(3), "b": np.zeros(4)}, ValueError, "same number of samples"),
        ({"a": "text"}, TypeError, "must be a NumPy array"),
        ({"a": 3.0}, TypeError, "must be a NumPy array"),
        ({"a": [[1, 2], [3]]}, ValueError, "input 'a' is not a regular array"),
    ],
)
def test_constructor_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        MultiInput(**kwargs)


def test_indexing_errors():
    X = make()
    with pytest.raises(KeyError, match="no input 'c'"):
        X["c"]
    with pytest.raises(IndexError, match="out of bounds"):
        X[10]
    with pytest.raises(IndexError, match="boolean mask"):
        X[np.ones(3, bool)]
    with pytest.raises(IndexError, match="dtype"):
        X[np.array([0.5])]
    # A 2-D index made 2 "samples" of shape (2, ...) out of 4.
    with pytest.raises(IndexError, match=r"one-dimensional .* shape \(2, 2\)"):
        X[np.array([[0, 1], [2, 3]])]
    with pytest.raises(TypeError, match="cannot be converted to one array"):
        np.asarray(X)


def test_an_empty_index_selects_no_sample():
    # np.asarray([]) is float: it was refused as a non-integer index.
    X = make()
    for key in ([], np.array([], dtype=int)):
        assert X[key]["a"].shape == (0, *X["a"].shape[1:]) and len(X[key]) == 0


@given(st.lists(st.integers(0, 9), min_size=1, max_size=20))
def test_integer_indexing_matches_arrays(idx):
    X = make()
    sub = X[np.array(idx)]
    np.testing.assert_array_equal(sub["a"], X["a"][idx])
    np.testing.assert_array_equal(sub["b"].to_numpy(), X["b"].to_numpy()[idx])


def test_sklearn_splitters_and_pickle():
    X = make(12)
    y = np.arange(12) % 2
    for cv in (KFold(3), StratifiedKFold(3)):
        for train, test in cv.split(X, y):
            assert len(X[train]) + len(X[test]) == 12
    for train, test in GroupKFold(3).split(X, y, groups=np.arange(12) // 4):
        assert len(X[test]) == 4
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    assert len(Xtr) == 9 and len(Xte) == 3
    assert pickle.loads(pickle.dumps(X)) == X


def test_cross_val_score_pipeline_and_clone(two_inputs):
    spectra, aux, Y = two_inputs
    X = MultiInput(spectra=spectra, aux=aux)
    pipe = make_pipeline(
        InputTransformer({"aux": StandardScaler()}),
        NetClassifier(
            max_epochs=3, device="cpu", random_state=0, validation_fraction=None
        ),
    )
    scores = cross_val_score(clone(pipe), X, Y[:, 1], cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.5)


@pytest.mark.parametrize("on_device", [False, True])
def test_bad_value_in_a_later_input_is_named(two_inputs, monkeypatch, on_device):
    """Every input of a batch is checked, on the host or (as on a GPU) on
    the device: infinity in the second input names that input and its row."""
    if on_device:
        monkeypatch.setattr(
            "skestimators._engine._inference._checks_on_device", lambda device: True
        )
    spectra, aux, Y = two_inputs
    clf = NetClassifier(max_epochs=1, device="cpu", validation_fraction=None)
    clf.fit(MultiInput(spectra=spectra, aux=aux), Y[:, 1])
    aux = aux.copy()
    aux[7, 0] = np.inf
    with pytest.raises(ValueError, match=r"'aux' contains infinity .*row 7\)"):
        clf.predict(MultiInput(spectra=spectra, aux=aux))
