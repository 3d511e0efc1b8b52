import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from skestimators import MultiInput, NetClassifier
from skestimators.preprocessing import InputTransformer, NDStandardScaler


@pytest.fixture
def X():
    rng = np.random.RandomState(0)
    return MultiInput(
        spectra=rng.normal(size=(20, 8, 3)),
        aux=pd.DataFrame(rng.normal(size=(20, 3)) * 10 + 5, columns=["a", "b", "c"]),
        extra=rng.normal(size=(20, 2)),
    )


def test_each_input_transformed_others_passed(X):
    t = InputTransformer({"aux": StandardScaler()})
    Xt = t.fit_transform(X)
    assert Xt.keys() == ["aux", "spectra", "extra"]
    np.testing.assert_allclose(Xt["aux"].mean(0), 0, atol=1e-12)
    np.testing.assert_array_equal(Xt["spectra"], X["spectra"])
    np.testing.assert_allclose(t.transform(X)["aux"], Xt["aux"])


def test_drop_remainder_and_multi_source(X):
    def flat_concat(M):
        return np.hstack([M["spectra"].reshape(len(M), -1), np.asarray(M["aux"])])

    t = InputTransformer(
        {
            "both": (FunctionTransformer(flat_concat), ["spectra", "aux"]),
            "extra": "drop",
        },
        remainder="drop",
    )
    Xt = t.fit_transform(X)
    assert Xt.shapes == {"both": (20, 27)}
    assert t.output_names_ == ["both"]


def test_nested_params_and_grid_search(X):
    y = (np.asarray(X["aux"])[:, 0] > 5).astype(int)
    pipe = make_pipeline(
        InputTransformer({"aux": StandardScaler(), "extra": PCA(n_components=1)}),
        NetClassifier(
            max_epochs=2, device="cpu", random_state=0, validation_fraction=None
        ),
    )
    params = pipe.get_params()
    assert "inputtransformer__extra__n_components" in params
    pipe.set_params(inputtransformer__aux__with_mean=False)
    assert pipe.get_params()["inputtransformer__aux__with_mean"] is False
    search = GridSearchCV(pipe, {"inputtransformer__extra__n_components": [1, 2]}, cv=2)
    search.fit(X, y)
    assert search.best_params_["inputtransformer__extra__n_components"] in (1, 2)


def test_errors(X):
    with pytest.raises(ValueError, match="unknown input"):
        InputTransformer({"nope": StandardScaler()}).fit(X)
    with pytest.raises(TypeError, match="must be a transformer"):
        InputTransformer({"aux": 3}).fit(X)
    t = InputTransformer({"aux": StandardScaler()}).fit(X)
    with pytest.raises(ValueError, match="missing the named input"):
        t.transform(MultiInput(aux=X["aux"]))
    with pytest.raises(ValueError, match="drops every input"):
        InputTransformer({"aux": "drop"}, remainder="drop").fit_transform(X)
    with pytest.raises(ValueError, match="drops every input"):  # at fit, not later
        InputTransformer({"aux": "drop"}, remainder="drop").fit(X)
    # "Expected 2D array, got Unable to find the number of features ..."
    with pytest.raises(ValueError, match=r"of shape \(5,\)\. Reshape your data: "):
        InputTransformer({"X": StandardScaler()}).fit(np.arange(5.0))


def test_pandas_output_reaches_the_entries_and_keeps_named_inputs(X):
    # With set_output(transform="pandas") or scikit-learn's global
    # transform_output="pandas", the output (a MultiInput) was wrapped as a
    # DataFrame: AttributeError from get_feature_names_out.
    import sklearn

    from skestimators.preprocessing import SpectrumNormalizer

    it = InputTransformer({"aux": StandardScaler(), "spectra": SpectrumNormalizer()})
    out = it.set_output(transform="pandas").fit_transform(X)
    assert isinstance(out, MultiInput) and isinstance(out["aux"], pd.DataFrame)
    assert list(out["aux"].columns) == ["a", "b", "c"]
    assert out["spectra"].shape == X["spectra"].shape  # 3-D: left as an array
    with sklearn.config_context(transform_output="pandas"):
        out = InputTransformer({"aux": StandardScaler()}).fit_transform(X)
        assert isinstance(out["aux"], pd.DataFrame)
        assert SpectrumNormalizer().fit_transform(X["spectra"]).ndim == 3
    single = InputTransformer({"X": StandardScaler()}).set_output(transform="pandas")
    assert isinstance(single.fit_transform(X["aux"]), pd.DataFrame)


def test_an_entry_named_after_an_input_it_does_not_read_is_refused(X):
    # The input "aux" vanished from the output without a word.
    it = InputTransformer({"aux": (FunctionTransformer(), "spectra")})
    with pytest.raises(ValueError, match="'aux' reads other inputs"):
        it.fit(X)
    out = InputTransformer(
        {"aux": (FunctionTransformer(), "spectra")}, remainder="drop"
    ).fit_transform(X)
    assert list(out.keys()) == ["aux"]


def test_a_single_array_keeps_its_column_names_and_width():
    # Names were invented ("x0", ...) and a wider table passed at transform.
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]})
    it = InputTransformer({"X": "passthrough"}).fit(frame)
    assert it.feature_names_in_.tolist() == ["a", "b"]
    assert it.get_feature_names_out().tolist() == ["a", "b"]
    with pytest.warns(UserWarning, match="valid feature names"):
        with pytest.raises(ValueError, match="3 features, but InputTransformer"):
            it.transform(np.ones((2, 3)))
    it.fit(frame.to_numpy())  # refitted on an array: no names any more
    assert not hasattr(it, "feature_names_in_")


@pytest.mark.parametrize("transformers", [{"X": NDStandardScaler()}, {}])
def test_pandas_output_leaves_a_3d_single_array_as_it_is(transformers):
    # The wrapper asked the inner scaler for feature names it has only for
    # 2-D data (AttributeError), or pandas for a DataFrame of 3-D data.
    X3 = np.random.default_rng(0).random((4, 5, 3))
    out = InputTransformer(transformers).set_output(transform="pandas")
    assert out.fit_transform(X3).shape == (4, 5, 3)
    assert not hasattr(out, "get_feature_names_out")


@pytest.mark.parametrize("name", ["remainder", "transformers", "a__b"])
def test_entry_names_that_collide_with_parameters_are_refused(name):
    # "remainder" hid the parameter of that name from set_params, and
    # "a__b" listed parameters that set_params then refused.
    X = MultiInput(a=np.ones((4, 2)))
    with pytest.raises(ValueError, match=f"entry '{name}'.*may not contain '__'"):
        InputTransformer({name: (StandardScaler(), "a")}).fit(X)


def test_a_dict_of_inputs_of_different_lengths_is_refused():
    # fit used to fit 'a' on 8 samples and 'b' on 3 without a word.
    with pytest.raises(ValueError, match="same number of samples"):
        InputTransformer({"a": StandardScaler()}).fit(
            {"a": np.ones((8, 3)), "b": np.ones((3, 2))}
        )


def test_transform_checks_passthrough_shapes_and_names_the_failing_entry():
    # A passthrough input fitted as (n, 2) went through as (n, 7, 4), and an
    # entry's error never said which input it was about.
    rng = np.random.default_rng(0)
    X = MultiInput(a=rng.random((8, 3)), b=rng.random((8, 2)))
    it = InputTransformer({"a": StandardScaler()}).fit(X)
    with pytest.raises(ValueError, match=r"X\['b'\] has samples of shape \(7, 4\)"):
        it.transform(MultiInput(a=X["a"], b=rng.random((8, 7, 4))))
    with pytest.raises(ValueError, match="entry 'a': X has 5 features"):
        it.transform(MultiInput(a=rng.random((8, 5)), b=X["b"]))


def test_a_list_passes_through_and_subclass_errors_keep_their_type():
    # A list at transform was refused ("samples of shape None"), and a
    # NonFinitePredictionError raised in an entry became a plain ValueError.
    from sklearn.base import BaseEstimator, TransformerMixin

    from skestimators.exceptions import NonFinitePredictionError

    A = np.arange(12.0).reshape(4, 3)
    assert InputTransformer({}).fit(A).transform(A.tolist()) == A.tolist()

    class Refuses(TransformerMixin, BaseEstimator):
        def fit(self, X, y=None):
            return self

        def transform(self, X):
            raise NonFinitePredictionError("not finite", rows=[0])

    X = {"a": np.ones((4, 2)), "b": np.ones((4, 1))}
    it = InputTransformer({"a": Refuses()}).fit(X)
    with pytest.raises(NonFinitePredictionError, match="not finite"):
        it.transform(X)
