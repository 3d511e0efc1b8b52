"""SoftVotingClassifier: multilabel and single-label soft voting."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import make_classification, make_multilabel_classification
from sklearn.linear_model import LogisticRegression
from sklearn.multioutput import MultiOutputClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from skestimators import MultiInput
from skestimators.ensemble import SoftVotingClassifier


@pytest.fixture(scope="module")
def multilabel():
    return make_multilabel_classification(
        150, n_features=6, n_classes=3, random_state=0
    )


def test_multilabel_average_of_list_and_array_outputs(multilabel):
    X, y = multilabel
    lr = MultiOutputClassifier(LogisticRegression(max_iter=500))
    knn = KNeighborsClassifier(5)
    vote = SoftVotingClassifier([("lr", lr), ("knn", knn)], weights=[3, 1]).fit(X, y)
    p_lr = np.column_stack([p[:, 1] for p in clone(lr).fit(X, y).predict_proba(X)])
    p_knn = np.column_stack([p[:, 1] for p in clone(knn).fit(X, y).predict_proba(X)])
    expected = (3 * p_lr + p_knn) / 4
    assert_allclose(vote.predict_proba(X), expected)
    assert_array_equal(vote.predict(X), (expected > 0.5).astype(int))
    assert len(vote.classes_) == 3
    assert vote.n_features_in_ == 6
    assert set(vote.named_estimators_) == {"lr", "knn"}


def test_label_constant_in_training_gets_probability_zero(multilabel):
    # Trees and kNN return one column for a label that had a single class.
    X, y = multilabel
    y = y.copy()
    y[:, 1] = 0
    vote = SoftVotingClassifier(
        [
            ("tree", DecisionTreeClassifier(max_depth=3, random_state=0)),
            ("knn", KNeighborsClassifier()),
        ]
    ).fit(X, y)
    assert_array_equal(vote.predict_proba(X)[:, 1], 0.0)
    assert_array_equal(vote.predict(X)[:, 1], 0)


def test_drop_bunch_and_feature_names(multilabel):
    import pandas as pd
    from sklearn.base import is_classifier

    X, y = multilabel
    df = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    vote = SoftVotingClassifier(
        [("knn", KNeighborsClassifier()), ("tree", "drop")], weights=[1, 5]
    ).fit(df, y)
    assert vote.named_estimators_.tree == "drop"
    from skestimators._io._layout import walk_estimators

    assert [path for path, _ in walk_estimators(vote)] == [
        "SoftVotingClassifier",
        "knn",
    ]
    assert vote.named_estimators_.knn is vote.estimators_[0]
    assert list(vote.feature_names_in_) == list(df.columns)
    knn_only = KNeighborsClassifier().fit(df, y).predict_proba(df)
    assert_allclose(
        vote.predict_proba(df), np.column_stack([p[:, 1] for p in knn_only])
    )
    assert is_classifier(SoftVotingClassifier("not a list"))
    with pytest.raises(ValueError, match="All estimators are 'drop'"):
        SoftVotingClassifier([("a", "drop")]).fit(X, y)


def test_single_label_aligns_member_classes():
    X, y = make_classification(120, 5, n_informative=3, n_classes=3, random_state=0)
    labels = np.array(["a", "b", "c"])[y]
    vote = SoftVotingClassifier(
        [
            ("lr", LogisticRegression(max_iter=500)),
            ("tree", DecisionTreeClassifier(max_depth=3, random_state=0)),
        ]
    ).fit(X, labels)
    proba = vote.predict_proba(X)
    assert proba.shape == (120, 3)
    assert_allclose(proba.sum(1), 1)
    assert set(vote.predict(X)) <= {"a", "b", "c"}
    assert vote.score(X, labels) > 0.8


def test_single_column_y_unwraps_multi_output_members():
    # A MultiOutputClassifier fitted on y of shape (n, 1) returns a list of
    # one (n, 2) array: NumPy's "shape mismatch ... (1,120,2)".
    X, y = make_classification(120, 5, random_state=0)
    members = [
        ("multi", MultiOutputClassifier(DecisionTreeClassifier(random_state=0))),
        ("lr", LogisticRegression()),
    ]
    vote = SoftVotingClassifier(members).fit(X, y.reshape(-1, 1))
    proba = vote.predict_proba(X)
    assert proba.shape == (120, 2)
    assert_allclose(proba.sum(1), 1)
    assert vote.score(X, y) > 0.8


def test_score_matches_label_columns_by_name(multilabel):
    import pandas as pd

    X, y = multilabel
    Y = pd.DataFrame(y, columns=[f"label{j}" for j in range(y.shape[1])])
    vote = SoftVotingClassifier([("lr", MultiOutputClassifier(LogisticRegression()))])
    vote.fit(X, Y)
    assert vote.score(X, Y[Y.columns[::-1]]) == pytest.approx(vote.score(X, Y))


def test_named_inputs_reach_pipeline_members(multilabel):
    X, y = multilabel
    Xm = MultiInput(a=X[:, :3], b=X[:, 3:])

    def stack(Z):
        return np.hstack([Z["a"], Z["b"]])

    member = make_pipeline(
        FunctionTransformer(stack), StandardScaler(), KNeighborsClassifier()
    )
    vote = SoftVotingClassifier([("knn", member)]).fit(Xm, y)
    assert vote.predict(Xm[:10]).shape == (10, 3)


def test_sample_weight_routed_to_pipeline_last_step(multilabel):
    X, y = multilabel
    X, y = X[:, :4], y[:, 0]
    weights = np.where(y == 1, 5.0, 1.0)
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    vote = SoftVotingClassifier([("lr", pipe)]).fit(X, y, sample_weight=weights)
    direct = clone(pipe).fit(X, y, logisticregression__sample_weight=weights)
    assert_allclose(vote.predict_proba(X), direct.predict_proba(X))


def test_errors(multilabel):
    X, y = multilabel
    with pytest.raises(ValueError, match="non-empty list"):
        SoftVotingClassifier([]).fit(X, y)
    with pytest.raises(TypeError, match="has no predict_proba"):
        SoftVotingClassifier([("svm", _NoProba())]).fit(X, y)
    knn = KNeighborsClassifier()
    with pytest.raises(ValueError, match="weights has shape"):
        SoftVotingClassifier([("knn", knn)], weights=[1, 2]).fit(X, y)
    with pytest.raises(ValueError, match="non-negative"):
        SoftVotingClassifier([("knn", knn)], weights=[-1]).fit(X, y)
    with pytest.raises(TypeError, match="does not accept sample_weight"):
        SoftVotingClassifier([("knn", knn)]).fit(X, y, sample_weight=np.ones(len(X)))
    with pytest.raises(ValueError, match="Unknown label type"):
        SoftVotingClassifier([("knn", knn)]).fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(ValueError, match="two classes"):
        SoftVotingClassifier([("knn", knn)]).fit(X, np.zeros(len(X)))


@pytest.mark.parametrize("low, high", [(1, 2), (-1, 1), (0, 2)])
def test_multilabel_values_other_than_0_1_are_rejected(multilabel, low, high):
    # The labels are read as 0/1 per column: other values would be inverted
    # or never predicted.
    X, y = multilabel
    vote = SoftVotingClassifier([("knn", KNeighborsClassifier())])
    with pytest.raises(ValueError, match="0/1 label matrix"):
        vote.fit(X, np.where(y == 1, high, low))
    assert_array_equal(vote.fit(X, y.astype(bool)).classes_[0], [0, 1])


@pytest.mark.parametrize("member", [object(), None, "svm"])
def test_tags_of_invalid_members_do_not_crash_before_fit(member, multilabel):
    from sklearn.utils import get_tags

    vote = SoftVotingClassifier([("bad", member)])
    assert get_tags(vote).estimator_type == "classifier"
    with pytest.raises((TypeError, ValueError)):
        vote.fit(*multilabel)


class _NoProba(DecisionTreeClassifier):
    @property
    def predict_proba(self):
        raise AttributeError("no predict_proba")


def test_blend_recipe_saves_and_scores_like_a_single_model(tmp_path):
    from skestimators import load, read_metadata, save
    from skestimators.datasets import make_exoplanet
    from skestimators.recipes import exoplanet_pipeline
    from skestimators.scoring._chunks import prediction_columns, prepare_model

    X, y = make_exoplanet(80, random_state=0)
    model = exoplanet_pipeline(random_state=0, device="cpu")
    model.set_params(softvoting__spectraauxclassifier__max_epochs=1).fit(X, y)
    vote = model.named_steps["softvoting"]
    assert vote.target_names_ == ["water", "cloud"]
    # Scored files name the targets; --batch-size reaches the ensemble's network.
    assert prediction_columns(model, "predict_proba", 2, 2) == [
        "proba_water",
        "proba_cloud",
    ]
    prepare_model(model, batch_size=7)
    assert vote.named_estimators_["spectraauxclassifier"].batch_size == 7
    path = save(model, tmp_path / "blend.joblib")
    meta = read_metadata(path)
    assert meta["targets"]["target_names"] == ["water", "cloud"]
    assert meta["device"] == "cpu"  # found inside the ensemble
    assert_allclose(load(path).predict_proba(X), model.predict_proba(X))


def test_weights_set_after_fit_reweigh_the_fitted_members():
    # weights were frozen at fit: set_params(weights=[0, 1]) then
    # predict_proba gave the old blend, as scikit-learn's voting does not.
    from sklearn.naive_bayes import GaussianNB

    X, y = make_classification(200, random_state=0)
    vote = SoftVotingClassifier(
        [("lr", LogisticRegression()), ("nb", GaussianNB())], weights=[1, 1]
    ).fit(X, y)
    vote.set_params(weights=[0, 1])
    assert_allclose(
        vote.predict_proba(X), vote.named_estimators_["nb"].predict_proba(X)
    )
    vote.set_params(weights=[1, 2, 3])
    with pytest.raises(ValueError, match="weights has shape"):
        vote.predict_proba(X)


def test_sparse_multilabel_y_is_read_as_labels():
    # "Unknown label type: unknown": np.asarray of a sparse matrix is a 0-d
    # object array.
    import scipy.sparse as sp

    X, Y = make_multilabel_classification(100, n_classes=3, random_state=0)
    members = [("tree", DecisionTreeClassifier(random_state=0))]
    dense = SoftVotingClassifier(members).fit(X, Y)
    sparse = SoftVotingClassifier(members).fit(X, sp.csr_matrix(Y))
    assert sparse.target_type_ == "multilabel-indicator"
    assert_array_equal(sparse.predict_proba(X), dense.predict_proba(X))
