"""Sparse inputs: kept sparse in memory, made dense one batch at a time."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skestimators import MultiInput, NetClassifier, NetRegressor, SpectraAuxClassifier
from skestimators._engine import Callback
from skestimators._engine._batching import (
    SparseRows,
    TensorData,
    scatter_rows,
    to_tensor,
)
from skestimators.estimators import ImageClassifier
from skestimators.preprocessing import InputTransformer

from .conftest import FAST

CONTAINERS = [sp.csr_matrix, sp.csr_array, sp.csc_matrix, sp.csc_array, sp.coo_array]
ids = [c.__name__ for c in CONTAINERS]


@pytest.fixture(scope="module")
def table():
    """A sparse-ish regression table (about 80% zeros) and class labels."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(240, 30))
    X[np.abs(X) < 1.3] = 0.0
    y = X @ rng.normal(size=30) + 0.1 * rng.normal(size=240)
    return X, y, (y > np.median(y)).astype(int)


@pytest.fixture(scope="module")
def categories():
    """A DataFrame of three categorical columns and one numeric column."""
    rng = np.random.RandomState(0)
    n = 300
    df = pd.DataFrame(
        {
            "a": rng.choice([f"a{i}" for i in range(40)], n),
            "b": rng.choice([f"b{i}" for i in range(25)], n),
            "c": rng.choice(["x", "y", "z"], n),
            "v": rng.normal(size=n),
        }
    )
    effect = {f"a{i}": i / 20 for i in range(40)}
    y = df["a"].map(effect).to_numpy() + df["v"].to_numpy() + (df["c"] == "x")
    return df, y.astype(float)


class DataSpy(Callback):
    """Keeps the inputs of the training and validation data the engine holds."""

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.train_X_ = X.train.X
        self.valid_X_ = None if X.valid is None else X.valid.X


# -- SparseRows ---------------------------------------------------------------------
def test_sparse_rows_slices_subsets_and_sums_duplicates():
    rng = np.random.RandomState(0)
    dense = rng.normal(size=(50, 7)) * (rng.uniform(size=(50, 7)) < 0.3)
    rows = to_tensor(sp.csr_matrix(dense))
    assert isinstance(rows, SparseRows)
    assert sp.issparse(rows.matrix) and rows.matrix.format == "csr"
    assert rows.shape == (50, 7) and len(rows) == 50 and rows.ndim == 2
    batch = rows[10:23]
    assert batch.dtype == torch.float32 and batch.shape == (13, 7)
    assert_array_equal(batch.numpy(), dense[10:23].astype(np.float32))
    assert rows[49:60].shape == (1, 7) and rows[5:5].shape == (0, 7)

    index = torch.as_tensor(rng.permutation(50))
    picked = rows.index_select(0, index)
    assert isinstance(picked, SparseRows)
    assert_array_equal(picked[0:50].numpy(), dense[index.numpy()].astype(np.float32))

    # A COO matrix with a repeated position: the values add up, as in toarray.
    coo = sp.coo_matrix(([1.0, 2.0, 5.0], ([0, 0, 2], [1, 1, 0])), shape=(3, 2))
    assert_array_equal(to_tensor(coo)[0:3].numpy(), coo.toarray())


def test_scatter_rows_builds_the_dense_batch_from_the_nonzeros():
    # The path of non-CPU devices (only the nonzeros are moved), run on the CPU.
    rng = np.random.RandomState(0)
    dense = rng.normal(size=(30, 9)) * (rng.uniform(size=(30, 9)) < 0.3)
    matrix = sp.csr_array(dense, dtype=np.float32)
    for start, stop in [(0, 30), (4, 17), (29, 30), (8, 8)]:
        batch = scatter_rows(matrix, start, stop, torch.device("cpu"))
        assert batch.dtype == torch.float32
        assert_array_equal(batch.numpy(), dense[start:stop].astype(np.float32))
    # Duplicate entries (a non-canonical CSR matrix) add up.
    twice = sp.csr_array(
        (np.array([1.0, 2.0, 4.0]), np.array([1, 1, 0]), np.array([0, 2, 3])),
        shape=(2, 3),
    )
    assert not twice.has_canonical_format
    batch = scatter_rows(twice, 0, 2, torch.device("cpu"))
    assert_array_equal(batch.numpy(), [[0.0, 3.0, 0.0], [4.0, 0.0, 0.0]])
    assert_array_equal(to_tensor(twice)[0:2].numpy(), batch.numpy())


def test_tensor_data_keeps_sparse_through_subset_and_slice():
    X = sp.random(40, 6, density=0.2, format="csr", random_state=0)
    y = torch.arange(40, dtype=torch.float32)
    data = TensorData(to_tensor(X), y).subset([3, 1, 7])
    assert isinstance(data.X, SparseRows)
    Xb, (yb, wb) = data.slice(0, 2)
    assert_array_equal(Xb.numpy(), X[[3, 1]].toarray().astype(np.float32))
    assert_array_equal(yb.numpy(), [3.0, 1.0]) and wb is None


def test_wide_one_hot_is_never_made_dense():
    # 100,000 x 50,000 one-hot: 20 GB dense in float32, about 1 MB sparse.
    n, width = 100_000, 50_000
    rng = np.random.RandomState(0)
    X = sp.csr_matrix(
        (np.ones(n), rng.randint(0, width, n), np.arange(n + 1)), shape=(n, width)
    )
    data = TensorData(to_tensor(X), torch.zeros(n))
    assert data.X.nbytes < 2_000_000
    shuffled = data.subset(rng.permutation(n))
    assert isinstance(shuffled.X, SparseRows) and shuffled.X.nbytes < 2_000_000
    Xb, _ = shuffled.slice(0, 32)
    assert Xb.shape == (32, width) and Xb.sum().item() == 32.0


# -- sparse in, the same predictions as dense in -------------------------------------
@pytest.mark.parametrize("container", CONTAINERS, ids=ids)
def test_regressor_sparse_predicts_like_dense(table, container):
    X, y, _ = table
    dense = NetRegressor(**FAST).fit(X, y)
    sparse = NetRegressor(**FAST).fit(container(X), y)
    assert_allclose(
        sparse.predict(container(X)), dense.predict(X), rtol=1e-5, atol=1e-6
    )
    # A model fitted on sparse data predicts dense data alike, and vice versa.
    assert_allclose(
        sparse.predict(X), dense.predict(container(X)), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csc_array], ids=str)
def test_classifier_sparse_proba_like_dense(table, container):
    X, _, labels = table
    dense = NetClassifier(**FAST).fit(X, labels)
    sparse = NetClassifier(**FAST).fit(container(X), labels)
    assert_allclose(
        sparse.predict_proba(container(X)), dense.predict_proba(X), atol=1e-6
    )
    assert_array_equal(sparse.predict(container(X)), dense.predict(X))


def test_validation_split_early_stopping_and_sample_weight_like_dense(table):
    X, y, _ = table
    weights = np.random.RandomState(1).uniform(0.2, 2.0, size=len(y))
    params = dict(FAST, max_epochs=15, validation_fraction=0.25, patience=3)
    dense = NetRegressor(**params).fit(X, y, sample_weight=weights)
    spy = DataSpy()
    sparse = NetRegressor(**params, callbacks=[("spy", spy)]).fit(
        sp.csr_matrix(X), y, sample_weight=weights
    )
    # The training and validation parts both stayed sparse in memory.
    assert isinstance(spy.train_X_, SparseRows)
    assert isinstance(spy.valid_X_, SparseRows)
    assert len(spy.train_X_) + len(spy.valid_X_) == len(y)
    assert_allclose(
        sparse.history_["valid_loss"], dense.history_["valid_loss"], rtol=1e-5
    )
    assert_allclose(sparse.predict(sp.csr_matrix(X)), dense.predict(X), rtol=1e-5)


def test_partial_fit_sparse_like_dense(table):
    X, y, _ = table
    dense, sparse = NetRegressor(**FAST), NetRegressor(**FAST)
    for part in (slice(0, 120), slice(120, 240), slice(0, 240)):
        dense.partial_fit(X[part], y[part])
        sparse.partial_fit(sp.csr_array(X[part]), y[part])
    assert sparse.n_iter_ == 3
    assert_allclose(sparse.predict(sp.csr_array(X)), dense.predict(X), rtol=1e-5)


def test_one_hot_column_transformer_pipeline_like_dense(categories):
    df, y = categories

    def pipeline(sparse_output):
        encode = ColumnTransformer(
            [
                ("cat", OneHotEncoder(sparse_output=sparse_output), ["a", "b", "c"]),
                ("num", StandardScaler(), ["v"]),
            ],
            sparse_threshold=1.0,
        )
        return make_pipeline(encode, NetRegressor(**FAST))

    sparse, dense = pipeline(True).fit(df, y), pipeline(False).fit(df, y)
    assert sp.issparse(sparse[0].transform(df))
    assert not sp.issparse(dense[0].transform(df))
    assert sparse[-1].n_features_in_ == 40 + 25 + 3 + 1
    assert_allclose(sparse.predict(df), dense.predict(df), rtol=1e-5, atol=1e-6)
    # It learns: better than predicting the mean, in cross-validation.
    pred = cross_val_predict(
        pipeline(True).set_params(netregressor__max_epochs=30), df, y, cv=3
    )
    assert np.mean((pred - y) ** 2) < 0.5 * np.var(y)


def test_default_one_hot_encoder_fits():
    # The case: a default OneHotEncoder in a ColumnTransformer.
    rng = np.random.RandomState(0)
    df = pd.DataFrame({"c": rng.choice(list("abcdefghij"), 200)})
    y = (df["c"] < "e").to_numpy(float)
    model = make_pipeline(
        ColumnTransformer([("c", OneHotEncoder(), ["c"])]), NetRegressor(**FAST)
    ).fit(df, y)
    assert model.predict(df).shape == (200,)


def test_checkpoint_of_sparse_data_is_loaded_and_other_data_refused(table, tmp_path):
    from skestimators.exceptions import CheckpointError

    X, y, _ = table
    first = NetRegressor(**FAST, checkpoint=tmp_path).fit(sp.csr_matrix(X), y)
    again = NetRegressor(**FAST, checkpoint=tmp_path).fit(sp.csc_matrix(X), y)
    assert_array_equal(again.predict(X), first.predict(X))
    other = sp.csr_matrix(X)
    other.data[0] += 1.0
    with pytest.raises(CheckpointError, match="other training data"):
        NetRegressor(**FAST, checkpoint=tmp_path).fit(other, y)


# -- named inputs -------------------------------------------------------------------
def test_multi_input_sparse_member_like_dense(two_inputs):
    spectra, aux, labels = two_inputs
    aux = np.where(np.abs(aux) < 0.7, 0.0, aux)
    y = labels[:, 1]
    dense_X = MultiInput(spectra=spectra, aux=aux)
    sparse_X = MultiInput(spectra=spectra, aux=sp.coo_matrix(aux))
    assert sp.issparse(sparse_X["aux"]) and sparse_X["aux"].format == "csr"
    assert sparse_X[[0, 5]].shapes == {"spectra": (2, 12, 3), "aux": (2, 4)}
    assert sparse_X[:10] == dense_X[:10]

    dense = NetClassifier(**FAST).fit(dense_X, y)
    sparse = NetClassifier(**FAST).fit(sparse_X, y)
    assert_allclose(
        sparse.predict_proba(sparse_X), dense.predict_proba(dense_X), atol=1e-6
    )


def test_spectra_aux_sparse_aux_like_dense(two_inputs):
    spectra, aux, y = two_inputs
    aux = np.where(np.abs(aux) < 0.7, 0.0, aux)
    params = dict(FAST, width=8)
    dense = SpectraAuxClassifier("dense", **params).fit(
        MultiInput(spectra=spectra, aux=aux), y
    )
    X = MultiInput(spectra=spectra, aux=sp.csr_array(aux))
    sparse = SpectraAuxClassifier("dense", **params).fit(X, y)
    assert_allclose(
        sparse.predict_proba(X),
        dense.predict_proba(MultiInput(spectra=spectra, aux=aux)),
        atol=1e-6,
    )


def test_input_transformer_sparse_output_feeds_a_network(two_inputs):
    spectra, _, labels = two_inputs
    rng = np.random.RandomState(0)
    site = rng.choice(["n", "s", "e", "w"], size=(len(labels), 1))
    X = MultiInput(spectra=spectra, site=site)
    model = make_pipeline(
        InputTransformer({"site": OneHotEncoder()}), NetClassifier(**FAST)
    )
    Xt = clone(model[0]).fit_transform(X)
    assert sp.issparse(Xt["site"])
    model.fit(X, labels[:, 0])
    assert model[-1].input_shape_ == {"spectra": (12, 3), "site": (4,)}
    assert model.predict_proba(X).shape == (len(labels), 2)


# -- errors -------------------------------------------------------------------------
def test_nan_in_sparse_data_is_refused_like_dense(table):
    X, y, _ = table
    bad = sp.csr_matrix(X)
    bad.data[5] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        NetRegressor(**FAST).fit(bad, y)
    dense_bad = bad.toarray()
    with pytest.raises(ValueError, match="Input X contains NaN"):
        NetRegressor(**FAST).fit(dense_bad, y)

    model = NetRegressor(**FAST).fit(X, y)
    row = int(np.flatnonzero(np.isnan(dense_bad).any(1))[0])
    message = f"Input 'X' contains NaN \\(first at row {row}\\)"
    with pytest.raises(ValueError, match=message):
        model.predict(bad)
    with pytest.raises(ValueError, match=message):
        model.predict(dense_bad)

    inf = sp.csr_matrix(X)
    inf.data[0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        NetRegressor(**FAST).fit(inf, y)


def test_nan_in_sparse_named_input_is_refused(two_inputs):
    spectra, aux, labels = two_inputs
    aux = sp.csr_matrix(aux)
    aux.data[3] = np.nan
    with pytest.raises(ValueError, match="Input aux contains NaN"):
        NetClassifier(**FAST).fit(MultiInput(spectra=spectra, aux=aux), labels[:, 0])


def test_sparse_feature_count_checked_at_predict(table):
    X, y, _ = table
    model = NetRegressor(**FAST).fit(sp.csr_matrix(X), y)
    with pytest.raises(ValueError, match="X has 29 features"):
        model.predict(sp.csr_matrix(X[:, :29]))


def test_image_estimator_still_refuses_sparse_with_a_clear_error():
    X = sp.random(20, 12, density=0.3, format="csr", random_state=0)
    with pytest.raises(TypeError, match="[Ss]parse"):
        ImageClassifier(max_epochs=1, device="cpu").fit(X, np.arange(20) % 2)


# -- GPU ----------------------------------------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_sparse_batches_made_dense_on_the_gpu(table):
    X, y, _ = table
    rows = to_tensor(sp.csr_matrix(X)).to(torch.device("cuda"))
    batch = rows[3:40]
    assert batch.device.type == "cuda"
    assert_array_equal(batch.cpu().numpy(), X[3:40].astype(np.float32))
    params = dict(FAST, device="cuda")
    dense = NetRegressor(**params).fit(X, y)
    sparse = NetRegressor(**params).fit(sp.csr_matrix(X), y)
    assert_allclose(
        sparse.predict(sp.csr_matrix(X)), dense.predict(X), rtol=1e-4, atol=1e-5
    )


def test_sparse_beyond_float32_is_named_not_a_divergence():
    # Finite in float64, infinite once stored as float32: the fit "diverged".
    X = sp.random(60, 8, density=0.3, format="csr", random_state=0)
    X.data[5] = 1e39
    with pytest.raises(ValueError, match="too large for float32.*sparse"):
        NetRegressor(**FAST).fit(X, np.zeros(60))
