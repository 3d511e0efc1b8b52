"""SpectraAuxClassifier and the exoplanet recipe, on simulated spectra."""

import pickle

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_score

from skestimators import MultiInput, SpectraAuxClassifier
from skestimators.datasets import make_exoplanet
from skestimators.recipes import exoplanet_features, exoplanet_pipeline
from skestimators.recipes._exoplanet import VARIANTS


@pytest.fixture(scope="module")
def data():
    X, y = make_exoplanet(300, random_state=0)
    pre = exoplanet_pipeline("attention")[0].fit(X, y)
    return X, y, pre.transform(X)


FAST = dict(max_epochs=3, batch_size=32, device="cpu", random_state=0)


@pytest.mark.parametrize(
    "module", ["conv1d", "attention", "lstm", "dense", ("attention", "dense")]
)
def test_branches_shapes_and_history(data, module):
    _, y, Xt = data
    clf = SpectraAuxClassifier(module, width=8, positions=4, **FAST).fit(Xt, y)
    assert clf.predict_proba(Xt).shape == (300, 2)
    assert set(np.unique(clf.predict(Xt))) <= {0, 1}
    assert [c.tolist() for c in clf.classes_] == [[0, 1], [0, 1]]
    assert clf.target_names_ == ["water", "cloud"]
    for col in ("valid_water_accuracy", "valid_water_roc_auc", "valid_cloud_accuracy"):
        assert col in clf.history_


def test_sklearn_multilabel_scorers(data):
    from sklearn.model_selection import cross_validate

    _, y, Xt = data
    clf = SpectraAuxClassifier("conv1d", width=8, **FAST)
    scores = cross_validate(clf, Xt, y, cv=2, scoring=["roc_auc", "accuracy"])
    assert np.all(scores["test_roc_auc"] > 0.4)


def test_learns_simulated_water(data):
    _, y, Xt = data
    clf = SpectraAuxClassifier(
        "dense", width=32, max_epochs=40, device="cpu", random_state=0
    )
    scores = cross_val_score(clf, Xt, y["water"], cv=3)
    assert scores.mean() > 0.75


def test_single_binary_target_and_target_weights(data):
    _, y, Xt = data
    clf = SpectraAuxClassifier("conv1d", width=8, **FAST).fit(Xt, y["water"])
    assert clf.predict(Xt).shape == (300,) and clf.predict_proba(Xt).shape == (300, 2)
    weighted = SpectraAuxClassifier(
        "conv1d", width=8, target_weights={"cloud": 0.0}, **FAST
    )
    assert weighted.fit(Xt, y).predict_proba(Xt).shape == (300, 2)


def test_errors(data):
    X, y, Xt = data
    with pytest.raises(ValueError, match="needs named inputs"):
        SpectraAuxClassifier(**FAST).fit(Xt["spectra"], y)
    with pytest.raises(ValueError, match="binary targets"):
        SpectraAuxClassifier(**FAST).fit(Xt, y["water"] + y["cloud"])
    with pytest.raises(ValueError, match="SpectraAuxNet needs inputs"):
        SpectraAuxClassifier(**FAST).fit(
            MultiInput(spectra=Xt["spectra"], other=Xt["aux"]), y
        )
    with pytest.raises(NotFittedError):
        SpectraAuxClassifier().predict(Xt)
    clf = SpectraAuxClassifier(width=8, **FAST).fit(Xt, y)
    with pytest.raises(ValueError, match="sample shape"):
        clf.predict(MultiInput(spectra=Xt["spectra"][:, :40], aux=Xt["aux"]))


def test_idempotent_clone_pickle(data):
    _, y, Xt = data
    clf = SpectraAuxClassifier("attention", width=8, **FAST)
    a = clone(clf).fit(Xt, y).predict_proba(Xt)
    fitted = clf.fit(Xt, y)
    np.testing.assert_array_equal(a, fitted.predict_proba(Xt))
    np.testing.assert_array_equal(
        a, pickle.loads(pickle.dumps(fitted)).predict_proba(Xt)
    )


def _twelve_systems():
    """120 simulated planets in twelve systems of ten (shared auxiliary values)."""
    X, y = make_exoplanet(120, random_state=2)
    aux = np.repeat(X["aux"].to_numpy()[:12], 10, axis=0)
    aux = pd.DataFrame(aux, columns=X["aux"].columns)
    return MultiInput(spectra=X["spectra"], aux=aux), y


@pytest.mark.parametrize("variant", VARIANTS)
def test_recipe_variants_fit_raw_data(variant):
    X, y = make_exoplanet(80, random_state=1)
    pipe = exoplanet_pipeline(variant, random_state=0, device="cpu")
    net = "spectraauxclassifier"
    if variant == "blend":
        net = f"softvoting__{net}"
    pipe.set_params(**{f"{net}__max_epochs": 1})
    assert pipe.fit(X, y).predict(X).shape == (80, 2)


def test_blend_averages_network_boosting_and_kernel():
    X, y = _twelve_systems()
    pipe = exoplanet_pipeline(random_state=0, device="cpu")
    pipe.set_params(softvoting__spectraauxclassifier__max_epochs=2).fit(X, y)
    vote = pipe.named_steps["softvoting"]
    Z = pipe.named_steps["preprocess"].transform(X)
    net = vote.named_estimators_["spectraauxclassifier"].predict_proba(Z)
    members = [net]
    for name in ("boosting", "kernel"):
        proba = vote.named_estimators_[name].predict_proba(Z)
        members.append(np.column_stack([p[:, 1] for p in proba]))
    assert_allclose(
        pipe.predict_proba(X), (members[0] + members[1] + 2 * members[2]) / 4
    )
    assert not np.allclose(members[2], 0.5)
    assert [list(c) for c in vote.classes_] == [[0, 1], [0, 1]]


def test_blend_kernel_reads_siblings_and_abstains_without():
    X, y = _twelve_systems()
    pipe = exoplanet_pipeline(random_state=0, device="cpu")
    pipe.set_params(softvoting__spectraauxclassifier__max_epochs=1)
    pipe.fit(X[:100], y[:100])
    kernel = pipe.named_steps["softvoting"].named_estimators_["kernel"]
    Z = pipe.named_steps["preprocess"].transform(X)
    siblings = np.asarray(Z["siblings"])
    # Four references (water x cloud) per seen system, 52 residuals each.
    assert siblings.shape == (120, 4 * 52 + 1)
    # A system needs two planets of each class in fit for its references.
    known = siblings[:, -1] > 0
    assert 0 < known[:100].sum() < 100 and not known[100:].any()
    assert (siblings[known, -1] == 10).all() and (siblings[~known] == 0).all()
    proba = kernel.predict_proba(Z)
    residuals = siblings[known, :-1].reshape(-1, 4, 52)
    first = [m.predict_proba(siblings[known, :-1]) for m in kernel.estimators_]
    # References in the order (dry, clear), (dry, cloudy), (wet, clear),
    # (wet, cloudy): water is decided among siblings of the same cloud
    # cover, cloud among siblings of the same water label, each weighed by
    # the other target's probability.
    for j, pairs in enumerate([([0, 2], [1, 3]), ([0, 1], [2, 3])]):
        contexts = kernel.context_estimators_[j]
        assert [c.tolist() for c, _, _ in contexts] == [[0], [1]]
        assert [r.tolist() for _, r, _ in contexts] == list(pairs)
        expected = sum(
            first[1 - j][:, [c]]
            * model.predict_proba(residuals[:, refs].reshape(len(residuals), -1))
            for c, refs, model in ((c[0], r, m) for c, r, m in contexts)
        )
        assert_allclose(proba[j][known], expected)
        assert_allclose(proba[j][~known], 0.5)  # no references: no opinion
    # Only planets of systems unseen in fit (GroupKFold's test folds): the
    # machines were asked for 0 rows and raised.
    for target in kernel.predict_proba(Z[100:]):
        assert_allclose(target, 0.5)
    assert pipe.predict_proba(X[100:]).shape == (20, 2)
    # One 1-D target: references per class of that target, one model.
    one = exoplanet_pipeline(random_state=0, device="cpu").set_params(
        softvoting__spectraauxclassifier__max_epochs=1
    )
    one.fit(X[:100], y["water"][:100])
    assert one.predict_proba(X).shape == (120, 2)
    assert one.predict_proba(X[100:]).shape == (20, 2)
    kernel = one.named_steps["softvoting"].named_estimators_["kernel"]
    assert kernel.classes_.tolist() == [0, 1] and len(kernel.estimators_) == 1
    assert kernel.context_estimators_ == [[]]  # no other target to condition on


def test_blend_boosting_reads_the_system_reference_only_where_there_is_one():
    X, y = _twelve_systems()  # the last two are never seen in fit below
    pipe = exoplanet_pipeline(random_state=0, device="cpu")
    pipe.set_params(softvoting__spectraauxclassifier__max_epochs=1).fit(
        X[:100], y[:100]
    )
    boosting = pipe.named_steps["softvoting"].named_estimators_["boosting"]
    Z = pipe.named_steps["preprocess"].transform(X)
    reference = np.asarray(Z["reference"])
    assert (reference[:100, -1] == 10).all() and (reference[100:] == 0).all()
    proba = np.column_stack([p[:, 1] for p in boosting.predict_proba(Z)])
    base = np.hstack([np.asarray(Z[k]).reshape(120, -1) for k in ("spectra", "aux")])
    unseen = np.column_stack([p[:, 1] for p in boosting.base_.predict_proba(base)])
    seen = boosting.full_.predict_proba(np.hstack([base, reference[:, :-1]]))
    seen = np.column_stack([p[:, 1] for p in seen])
    assert_allclose(proba[100:], unseen[100:])
    assert_allclose(proba[:100], seen[:100])
    assert not np.allclose(proba[:100], unseen[:100])
    assert boosting.predict(Z).shape == (120, 2)


def test_blend_boosting_aligns_a_target_with_one_class_among_siblings():
    # Every planet with siblings is cloudy: the model that reads the
    # reference knows one cloud class, the other model two.
    from skestimators.recipes._exoplanet import _SystemAwareBoosting

    rng = np.random.default_rng(0)
    reference = np.zeros((40, 5))
    reference[:20, -1] = 10
    reference[:20, :-1] = rng.normal(size=(20, 4))
    X = {
        "spectra": rng.normal(size=(40, 4)),
        "aux": rng.normal(size=(40, 2)),
        "reference": reference,
    }
    y = np.column_stack([rng.integers(0, 2, 40), np.r_[np.ones(21), np.zeros(19)]])
    boosting = _SystemAwareBoosting().fit(X, y.astype(int))
    assert boosting.full_.classes_[1].tolist() == [1]
    cloud = boosting.predict_proba(X)[1]
    assert_allclose(cloud[:20], [[0.0, 1.0]] * 20)
    assert (boosting.predict(X)[:20, 1] == 1).all()


@pytest.mark.parametrize("per_combination", [2, 1])
def test_blend_kernel_fits_with_few_planets_with_siblings(per_combination):
    # Platt scaling's 5 internal folds needed 5 planets of each class among
    # those with siblings: 2 of each (min_planets) raised "n_splits=5 cannot
    # be greater than the number of members in each class".
    from skestimators.recipes._exoplanet import _SiblingKernel

    X, y = make_exoplanet(40, random_state=0)
    aux = X["aux"].to_numpy().copy()
    n = 4 * per_combination
    aux[:n] = aux[0]  # one system; the other planets have no siblings
    X = MultiInput(
        spectra=X["spectra"], aux=pd.DataFrame(aux, columns=X["aux"].columns)
    )
    y = y.to_numpy().copy()
    y[:n] = [[0, 0], [0, 1], [1, 0], [1, 1]] * per_combination
    pipe = exoplanet_pipeline(random_state=0, device="cpu")
    pipe.set_params(softvoting__spectraauxclassifier__max_epochs=1).fit(X, y)
    kernel = pipe.named_steps["softvoting"].named_estimators_["kernel"]
    assert isinstance(kernel, _SiblingKernel)
    # With one planet per combination there are no siblings at min_planets=2;
    # with two, each target has 4 planets per class: 4 internal folds.
    fitted = [m is not None for m in kernel.estimators_]
    assert fitted == [per_combination == 2] * 2
    assert pipe.predict_proba(X).shape == (40, 2)


def test_blend_kernel_gives_zero_to_classes_its_siblings_lack():
    # A class absent among the planets with siblings kept the abstaining
    # 1/3 next to the fitted model's probabilities: rows summed to 4/3.
    from skestimators.recipes._exoplanet import _SiblingKernel

    rng = np.random.default_rng(0)
    siblings = np.column_stack([rng.normal(size=(30, 4)), np.zeros(30)])
    siblings[:24, -1] = 12  # the last six planets have no siblings
    y = np.array([0, 1] * 12 + [2] * 6)
    kernel = _SiblingKernel().fit(MultiInput(siblings=siblings), y)
    proba = kernel.predict_proba(MultiInput(siblings=siblings))
    assert_allclose(proba.sum(axis=1), 1)
    assert (proba[:24, 2] == 0).all()
    assert_allclose(proba[24:], 1 / 3)


def test_blend_kernel_trains_each_context_on_its_planets():
    # Water among clear planets is learned from the clear planets only,
    # against the clear references; cloudy planets are all dry here, so that
    # context has no machine and the one on all references stands in.
    from skestimators.recipes._exoplanet import _SiblingKernel

    rng = np.random.default_rng(0)
    y = np.array([[0, 0], [0, 1], [1, 0]] * 10)  # three references
    siblings = np.column_stack([rng.normal(size=(30, 3 * 4)), np.full(30, 9)])
    X = MultiInput(siblings=siblings)
    kernel = _SiblingKernel().fit(X, y)
    (clear, refs, model), (cloudy, _, none) = kernel.context_estimators_[0]
    assert clear.tolist() == [0] and cloudy.tolist() == [1] and none is None
    assert refs.tolist() == [0, 2]  # (dry, clear) and (wet, clear)
    assert model.calibrated_classifiers_[0].estimator.shape_fit_ == (20, 2 * 4)
    rows = siblings[:, :-1]
    first = [m.predict_proba(rows) for m in kernel.estimators_]
    within = model.predict_proba(rows.reshape(30, 3, 4)[:, refs].reshape(30, -1))
    expected = first[1][:, [0]] * within + first[1][:, [1]] * first[0]
    assert_allclose(kernel.predict_proba(X)[0], expected)
    with pytest.raises(ValueError, match="not a multiple of the 3 combinations"):
        _SiblingKernel().fit(MultiInput(siblings=siblings[:, 1:]), y)


def test_blend_recipe_loads_from_a_safe_file_without_trusted_types(tmp_path):
    # The kernel's calibration holders are not trusted by skops itself: the
    # default recipe fell back to a pickle (or needed trusted=[...]).
    from skestimators import load, save

    X, y = _twelve_systems()
    blend = exoplanet_pipeline(random_state=0, device="cpu")
    blend.set_params(softvoting__spectraauxclassifier__max_epochs=1).fit(X, y)
    path = save(blend, tmp_path / "blend.skops", format="safe")
    assert_allclose(load(path).predict_proba(X), blend.predict_proba(X))


@pytest.mark.parametrize("column", [False, True])
def test_blend_recipe_fits_one_target(column):
    # The boosting member always built a MultiOutputClassifier: a 1-D y gave
    # "y must have at least two dimensions", an (n, 1) y a NumPy shape error.
    X, y = make_exoplanet(60, random_state=0)
    target = y[["water"]] if column else y["water"]
    blend = exoplanet_pipeline("blend", random_state=0).set_params(
        softvoting__spectraauxclassifier__max_epochs=1,
        softvoting__spectraauxclassifier__width=4,
        softvoting__spectraauxclassifier__device="cpu",
    )
    proba = blend.fit(X, target).predict_proba(X)
    assert proba.shape == (60, 2)
    assert_allclose(proba.sum(1), 1)
    assert set(np.unique(blend.predict(X))) <= {0, 1}


@pytest.mark.parametrize(
    "params, message",
    [
        ({"module": "attention", "depth": 0}, "depth must be an integer >= 1"),
        ({"width": 0}, "width must be an integer >= 1"),
        ({"module": "attention", "positions": -1}, "positions must be an integer"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ],
)
def test_spectra_aux_net_checks_its_sizes(params, message):
    # Built without complaint; torch's shape errors at the first forward.
    from skestimators.nn import SpectraAuxNet

    shapes = {"spectra": (52, 3), "aux": (5,)}
    with pytest.raises(ValueError, match=message):
        SpectraAuxNet(shapes, ["water", "cloud"], **params)


def test_recipe_errors_and_features():
    with pytest.raises(ValueError, match="variant must be one of"):
        exoplanet_pipeline("transformer")
    X, y = make_exoplanet(30, random_state=0)
    assert exoplanet_features().fit_transform(X).shape == (30, 167)


def test_multilabel_scorers_refuse_targets_of_several_classes():
    # A multiclass target gave all-NaN scores in cross_validate (roc_auc_score
    # complained of multi_class).
    from skestimators.metrics import multilabel_scorers

    with pytest.raises(ValueError, match=r"target 'kind' is multiclass.*roc_auc_ovr"):
        multilabel_scorers(pd.Series([0, 1, 2, 1], name="kind"))
    assert list(multilabel_scorers(pd.Series([0, 1, 1], name="w"))) == [
        "w_auc",
        "accuracy",
    ]


def test_multilabel_scorers_take_per_target_probability_lists():
    # Random forests return one (n, 2) array per target; the scorers used to
    # index the list as an array and fail.
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import cross_validate

    from skestimators.metrics import multilabel_scorers

    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 3))
    y = pd.DataFrame({"a": X[:, 0] > 0, "b": X[:, 1] > 0}).astype(int)
    forest = RandomForestClassifier(20, random_state=0)
    scores = cross_validate(
        forest, X, y, cv=3, scoring=multilabel_scorers(y), error_score="raise"
    )
    assert np.all(scores["test_a_auc"] > 0.9) and np.all(scores["test_b_auc"] > 0.9)
    fitted = forest.fit(X, y)
    proba = fitted.predict_proba(X)
    for j, name in enumerate(y):
        expected = roc_auc_score(y[name], proba[j][:, 1])
        assert multilabel_scorers(y)[f"{name}_auc"](fitted, X, y) == expected


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.DataConversionWarning")
@pytest.mark.parametrize("as_frame", [True, False])
def test_multilabel_scorers_score_one_binary_target_on_its_positive_class(as_frame):
    # With one target, predict_proba has one column per class: the scorer read
    # column 0, P(class 0), and reported 1 - AUC (or NaN for a Series).
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_validate

    from skestimators.metrics import multilabel_scorers

    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 3))
    water = pd.Series(
        (X[:, 0] + 0.5 * rng.normal(size=120) > 0).astype(int), name="water"
    )
    y = water.to_frame() if as_frame else water
    model = LogisticRegression().fit(X, water)
    scorer = multilabel_scorers(y)["water_auc"]
    assert scorer(model, X, y) == roc_auc_score(water, model.predict_proba(X)[:, 1])
    scores = cross_validate(
        LogisticRegression(),
        X,
        y,
        cv=3,
        scoring=multilabel_scorers(y),
        error_score="raise",
    )
    assert np.all(scores["test_water_auc"] > 0.8)


def test_lstm_branch_applies_its_dropout_at_depth_one():
    # torch's LSTM drops out only between stacked layers: the branch ignored
    # dropout at its default depth.
    import torch

    from skestimators.nn._spectra import LSTMBranch

    branch = LSTMBranch((20, 3), width=8, dropout=0.5).train()
    x = torch.randn(4, 20, 3)
    features = branch(x)
    assert (features == 0).float().mean() > 0.2
    branch.eval()
    torch.testing.assert_close(branch(x), branch(x))
    assert (branch(x) == 0).float().mean() < 0.05


def test_class_weight_reaches_a_single_binary_target():
    # The network returns a dict: re-keying its head dropped the class
    # weights of a 1-D binary target, and "balanced" trained as None.
    rng = np.random.RandomState(0)
    n = 200
    X = MultiInput(
        spectra=rng.rand(n, 20, 2).astype(np.float32),
        aux=rng.rand(n, 3).astype(np.float32),
    )
    rare = (rng.rand(n) < 0.1).astype(int)
    settings = dict(width=8, depth=1, head_width=8, aux_width=4, max_epochs=2)
    settings.update(random_state=0, device="cpu")
    plain = SpectraAuxClassifier("dense", **settings).fit(X, rare)
    balanced = SpectraAuxClassifier("dense", class_weight="balanced", **settings)
    balanced.fit(X, rare)
    (group,) = balanced.net_.head_groups
    assert group.logit_offset is not None and group.class_weight is not None
    assert balanced.predict_proba(X)[:, 1].mean() > plain.predict_proba(X)[:, 1].mean()
