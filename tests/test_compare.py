"""compare_variants: same folds for every variant, repeats, metrics, summaries."""

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import make_scorer
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    LeaveOneGroupOut,
    RepeatedStratifiedKFold,
    StratifiedKFold,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from skestimators import MultiInput, NetClassifier
from skestimators.model_selection import (
    compare_variants,
    plot_comparison,
    summarize_comparison,
)

from .conftest import FAST


@pytest.fixture(scope="module")
def indexed():
    """Data whose first column is the sample index, to recover the folds."""
    rng = np.random.RandomState(0)
    X = np.column_stack([np.arange(60), rng.normal(size=(60, 3))])
    y = np.tile([0, 1, 2], 20)
    return X, y


def fold_fingerprint(est, X, y):
    return float(np.sum(X[:, 0] ** 2))  # identifies the test fold


def seed_of(est, X, y):
    return float(
        est.get_params()[
            next(k for k in est.get_params() if k.endswith("random_state"))
        ]
    )


VARIANTS = {
    "prior": DummyClassifier(),
    "tree": DecisionTreeClassifier(),
    "scaled_tree": make_pipeline(StandardScaler(), DecisionTreeClassifier()),
}


def test_every_variant_sees_the_same_folds(indexed):
    X, y = indexed
    df = compare_variants(
        VARIANTS,
        X,
        y,
        cv=KFold(4, shuffle=True),
        n_repeats=3,
        random_state=0,
        scoring={"fold": fold_fingerprint, "seed": seed_of},
    )
    columns = ["variant", "repeat", "fold", "metric", "value", "fit_time"]
    assert list(df.columns) == columns
    assert len(df) == 3 * 3 * 4 * 2
    folds = df[df.metric == "fold"].pivot_table(
        index=["repeat", "fold"], columns="variant", values="value"
    )
    assert (folds.nunique(axis=1) == 1).all()  # identical folds per repeat
    by_repeat = folds.iloc[:, 0].unstack("fold")
    assert len({tuple(row) for row in by_repeat.to_numpy()}) == 3  # reshuffled
    seeds = df[df.metric == "seed"].groupby("repeat")["value"].unique()
    assert all(len(s) == 1 for s in seeds)  # same seed for all variants
    assert seeds.map(lambda s: s[0]).nunique() == 3  # a new seed per repeat
    # Reproducible.
    again = compare_variants(
        VARIANTS,
        X,
        y,
        cv=KFold(4, shuffle=True),
        n_repeats=3,
        random_state=0,
        scoring={"fold": fold_fingerprint, "seed": seed_of},
    )
    pd.testing.assert_series_equal(df["value"], again["value"])


def test_single_run_uses_estimators_and_cv_as_given(indexed):
    X, y = indexed
    df = compare_variants(
        {"tree": DecisionTreeClassifier(random_state=7)},
        X,
        y,
        cv=3,
        scoring={"fold": fold_fingerprint, "seed": seed_of},
    )
    assert set(df.loc[df.metric == "seed", "value"]) == {7.0}
    # cv=3 is an unshuffled StratifiedKFold, as in cross_validate.
    first = df[(df.metric == "fold") & (df.fold == 0)]["value"].item()
    _, test0 = next(StratifiedKFold(3).split(X, y))
    assert first == float(np.sum(test0**2))


@pytest.mark.parametrize(
    "scoring, metrics",
    [
        (None, ["score"]),
        ("accuracy", ["accuracy"]),
        (["accuracy", "f1_macro"], ["accuracy", "f1_macro"]),
        (
            {"acc": "accuracy", "custom": make_scorer(lambda a, b: 1.0)},
            ["acc", "custom"],
        ),
        (fold_fingerprint, ["score"]),
        # A callable returning several metrics, as cross_validate takes it
        # (failed in float(dict) after every fit had run).
        (lambda est, X, y: {"a": 1.0, "b": fold_fingerprint(est, X, y)}, ["a", "b"]),
    ],
)
def test_scoring_forms(indexed, scoring, metrics):
    X, y = indexed
    df = compare_variants(
        {"lr": LogisticRegression(max_iter=300)}, X, y, cv=2, scoring=scoring
    )
    assert list(dict.fromkeys(df["metric"])) == metrics
    assert len(df) == 2 * len(metrics)


def test_groups_and_unshufflable_splitter(indexed):
    X, y = indexed
    groups = np.repeat(np.arange(6), 10)
    df = compare_variants(
        {"prior": DummyClassifier()},
        X,
        y,
        cv=GroupKFold(3),
        groups=groups,
        scoring={"fold": fold_fingerprint},
    )
    assert len(df) == 3
    with pytest.warns(UserWarning, match="same folds"):
        df = compare_variants(
            {"prior": DummyClassifier()},
            X,
            y,
            cv=LeaveOneGroupOut(),
            groups=groups,
            n_repeats=2,
            scoring={"fold": fold_fingerprint},
        )
    assert len(df) == 2 * 6


def test_metrics_of_a_scoring_callable_must_not_clash(indexed):
    X, y = indexed
    scoring = {"acc": "accuracy", "mine": lambda est, X, y: {"acc": 1.0}}
    with pytest.raises(ValueError, match="Two metrics are named 'acc'"):
        compare_variants(
            {"prior": DummyClassifier()}, X, y, cv=2, scoring=scoring,
            error_score="raise",
        )  # fmt: skip


def test_repeated_splitters_are_reshuffled_in_each_repeat(indexed, recwarn):
    # RepeatedStratifiedKFold keeps its splitter class in `cv`: it was taken
    # for a wrapped splitter, not reseeded, and every repeat had the same
    # folds (with a wrong "no random_state" warning).
    X, y = indexed
    df = compare_variants(
        {"prior": DummyClassifier()},
        X,
        y,
        cv=RepeatedStratifiedKFold(n_splits=3, n_repeats=1, random_state=1),
        n_repeats=3,
        random_state=0,
        scoring={"fold": fold_fingerprint},
    )
    by_repeat = df.pivot_table(index="repeat", columns="fold", values="value")
    assert len({tuple(row) for row in by_repeat.to_numpy()}) == 3
    assert not [w for w in recwarn if "same folds" in str(w.message)]


def test_networks_on_multiinput(two_inputs):
    spectra, aux, targets = two_inputs
    X = MultiInput(spectra=spectra, aux=aux)
    y = targets[:, 1]
    df = compare_variants(
        {
            "small": NetClassifier(
                **{**FAST, "max_epochs": 3}, module_params={"width": 8}
            ),
            "large": NetClassifier(
                **{**FAST, "max_epochs": 3}, module_params={"width": 32}
            ),
        },
        X,
        y,
        cv=2,
        scoring=["accuracy", "roc_auc"],
    )
    assert len(df) == 2 * 2 * 2
    assert df["value"].between(0, 1).all()
    assert (df["fit_time"] > 0).all()


def test_summary_and_plot(indexed):
    X, y = indexed
    df = compare_variants(VARIANTS, X, y, cv=3, scoring=["accuracy", "f1_macro"])
    text = summarize_comparison(df)
    assert list(text.index) == list(VARIANTS)
    assert list(text.columns) == ["accuracy", "f1_macro", "fit_time"]
    assert " ± " in text.loc["tree", "accuracy"]
    numbers = summarize_comparison(df, precision=None)
    acc = df[(df.metric == "accuracy") & (df.variant == "tree")]["value"]
    assert numbers.loc["tree", ("accuracy", "mean")] == pytest.approx(acc.mean())
    assert numbers.loc["tree", ("accuracy", "std")] == pytest.approx(np.std(acc))
    axes = plot_comparison(df)
    assert len(axes) == 2
    assert [a.get_title() for a in axes] == ["accuracy", "f1_macro"]
    # One strip of dots per variant, one dot per fold.
    assert [len(c.get_offsets()) for c in axes[0].collections] == [3, 3, 3]
    with pytest.raises(ValueError, match="missing columns"):
        summarize_comparison(df.drop(columns="fold"))


def test_plot_marks_failed_folds():
    # A failed fit scores NaN; the plot used to draw nothing for it (and a
    # box of NaN statistics), so a variant that failed looked complete.
    df = pd.DataFrame(
        {
            "variant": ["a"] * 3 + ["b"] * 3,
            "repeat": 0,
            "fold": [0, 1, 2] * 2,
            "metric": "r2",
            "value": [0.8, 0.9, 0.85, 0.6, np.nan, np.nan],
            "fit_time": 1.0,
        }
    )
    (axis,) = plot_comparison(df)
    labels = [t.get_text() for t in axis.get_xticklabels()]
    assert labels == ["a", "b\n(2 of 3 failed)"]
    dots, crosses = [], []
    for collection in axis.collections:
        data = collection.get_offset_transform() == axis.transData
        (dots if data else crosses).append(len(collection.get_offsets()))
    assert dots == [3, 1] and crosses == [2]


def test_invalid_arguments(indexed):
    X, y = indexed
    with pytest.raises(ValueError, match="non-empty dict"):
        compare_variants({}, X, y)
    with pytest.raises(ValueError, match="n_repeats"):
        compare_variants(VARIANTS, X, y, n_repeats=0)
    # scikit-learn's tags' AttributeError before.
    with pytest.raises(TypeError, match="Variant 'a' is not an estimator"):
        compare_variants({"a": "ridge"}, X, y)
    with pytest.raises(TypeError, match="Variant 'a' is not an estimator"):
        compare_variants({"a": DecisionTreeClassifier}, X, y)


class _FailsOnFold(DecisionTreeClassifier):
    """Fails to fit without sample 0 (held out by fold 0 of an unshuffled KFold)."""

    def fit(self, X, y, sample_weight=None):
        if 0 not in X[:, 0]:
            raise ValueError("singular matrix")
        return super().fit(X, y, sample_weight)


@pytest.mark.parametrize("verbose", [0, 1])
def test_a_failing_fit_names_its_variant_and_fold(indexed, verbose):
    X, y = indexed
    variants = {"tree": DecisionTreeClassifier(), "fragile": _FailsOnFold()}
    with pytest.raises(ValueError, match="singular matrix") as info:
        compare_variants(
            variants, X, y, cv=KFold(3), verbose=verbose, error_score="raise"
        )
    assert info.value.__notes__ == [
        "compare_variants: raised by variant 'fragile', fold 0."
    ]


@pytest.mark.parametrize("verbose", [0, 1])
def test_a_failing_fit_scores_error_score_and_the_comparison_goes_on(
    indexed, verbose, capsys
):
    X, y = indexed
    variants = {"tree": DecisionTreeClassifier(), "fragile": _FailsOnFold()}
    with pytest.warns(FitFailedWarning) as record:
        df = compare_variants(
            variants, X, y, cv=KFold(3), scoring=["accuracy", "f1_macro"],
            verbose=verbose,
        )  # fmt: skip
    (warning,) = record
    summary, details = str(warning.message).split("\n\n", 1)
    assert summary == (
        "1 of 6 fits failed; their scores are set to error_score. The errors:\n"
        "variant 'fragile', fold 0: ValueError: singular matrix"
    )
    # Where it was raised, without running the comparison again.
    assert details.startswith(
        "Where each error was first raised:\n"
        "variant 'fragile', fold 0:\nTraceback (most recent call last):\n"
    )
    assert "in fit\n" in details and details.endswith("ValueError: singular matrix")
    assert warning.filename == __file__
    failed = df[(df["variant"] == "fragile") & (df["fold"] == 0)]
    assert list(failed["metric"]) == ["accuracy", "f1_macro"]
    assert failed["value"].isna().all()
    assert df.dropna()["value"].between(0, 1).all() and len(df.dropna()) == 10
    # The variant that failed once has no mean over the folds that worked.
    summary = summarize_comparison(df, precision=None)
    assert np.isnan(summary.loc["fragile", ("accuracy", "mean")])
    assert np.isnan(summary.loc["fragile", ("accuracy", "std")])
    assert summary.loc["tree"].notna().all()
    if verbose:
        assert "(fragile, fold 0: failed after " in capsys.readouterr().err
    # A number instead of NaN.
    with pytest.warns(FitFailedWarning):
        df = compare_variants(variants, X, y, cv=KFold(3), error_score=-1.0)
    assert (
        df.loc[(df["variant"] == "fragile") & (df["fold"] == 0), "value"].eq(-1.0).all()
    )


def test_every_fit_failing_is_an_error(indexed):
    X, y = indexed
    with pytest.raises(ValueError, match="All 3 fits failed") as info:
        compare_variants({"fragile": _FailsOnFold()}, X[1:], y[1:], cv=KFold(3))
    assert "variant 'fragile', fold 0: ValueError: singular matrix" in str(info.value)
    with pytest.raises(ValueError, match='error_score must be "raise" or a number'):
        compare_variants({"tree": DecisionTreeClassifier()}, X, y, error_score="nan")


def test_failure_details_name_variants_whose_name_has_a_colon(indexed):
    X, y = indexed
    with pytest.warns(FitFailedWarning) as record:
        compare_variants(
            {"tree": DecisionTreeClassifier(), "lr: 0.1": _FailsOnFold()},
            X, y, cv=KFold(3),
        )  # fmt: skip
    (warning,) = record
    assert "\nvariant 'lr: 0.1', fold 0:\nTraceback" in str(warning.message)


def test_failures_in_repeats_name_the_repeat(indexed):
    X, y = indexed
    variants = {"fragile": _FailsOnFold()}
    with pytest.warns(FitFailedWarning) as record:
        compare_variants(variants, X, y, cv=KFold(3, shuffle=True), n_repeats=2)
    (warning,) = [w for w in record if w.category is FitFailedWarning]
    # Each repeat names its own failing fold, the first repeat too.
    lines = str(warning.message).split("\n\n")[0].splitlines()[1:]
    assert len(lines) == 2
    # One traceback: both fits failed with the same error.
    assert str(warning.message).count("Traceback (most recent call last)") == 1
    for repeat, line in enumerate(lines):
        assert re.fullmatch(
            f"variant 'fragile', fold [0-2] of repeat {repeat}: ValueError: "
            "singular matrix",
            line,
        )


def test_folds_given_as_a_generator_serve_every_repeat(indexed):
    X, y = indexed
    with pytest.warns(UserWarning, match="cannot be reshuffled"):
        df = compare_variants(
            {"tree": DecisionTreeClassifier()}, X, y, cv=KFold(3).split(X),
            n_repeats=2, scoring={"fold": fold_fingerprint}, random_state=0,
        )  # fmt: skip
    assert df.groupby("repeat").size().tolist() == [3, 3]
    first, second = (df.loc[df["repeat"] == r, "value"].tolist() for r in (0, 1))
    assert first == second
    with pytest.raises(ValueError, match="yields no folds"):
        compare_variants({"tree": DecisionTreeClassifier()}, X, y, cv=[])


class _Recorder(DecisionTreeClassifier):
    """Records the fit parameters it was given."""

    def fit(self, X, y, sample_weight=None, extra=None, flag=None):
        self.weight_sum_ = float(np.sum(sample_weight))
        self.extra_ = extra
        self.flag_ = flag
        return super().fit(X, y, sample_weight=sample_weight)


def _fitted(attribute):
    return lambda est, X, y: float(np.sum(getattr(est, attribute)))


def test_fit_params_are_indexed_by_fold(indexed):
    from scipy.sparse import csr_matrix

    X, y = indexed
    weights = np.arange(60.0)
    df = compare_variants(
        {"r": _Recorder()}, X, y, cv=KFold(3),
        params={"sample_weight": weights, "extra": csr_matrix(np.ones((60, 2))),
                "flag": 7.0},
        scoring={"w": _fitted("weight_sum_"), "flag": _fitted("flag_"),
                 "extra": lambda e, X, y: e.extra_.shape[0]},
    )  # fmt: skip
    values = df.pivot(index="fold", columns="metric", values="value")
    folds = [test for _, test in KFold(3).split(X)]
    expected = [weights.sum() - weights[test].sum() for test in folds]
    np.testing.assert_array_equal(values["w"], expected)
    assert values["extra"].tolist() == [40, 40, 40]
    assert values["flag"].tolist() == [7.0] * 3


def test_metadata_routing_is_honoured(indexed):
    from sklearn import config_context
    from sklearn.metrics import accuracy_score

    X, y = indexed
    groups = np.repeat(np.arange(6), 10)
    weights = np.where(np.arange(60) % 2, 1.0, 0.0)
    with config_context(enable_metadata_routing=True):
        scorer = make_scorer(accuracy_score).set_score_request(sample_weight=True)
        tree = DecisionTreeClassifier(random_state=0).set_fit_request(
            sample_weight=True
        )
        df = compare_variants(
            {"tree": tree}, X, y, cv=GroupKFold(3), scoring={"acc": scorer},
            params={"groups": groups, "sample_weight": weights},
        )  # fmt: skip
        with pytest.raises(ValueError, match="pass them in params"):
            compare_variants({"tree": tree}, X, y, cv=GroupKFold(3), groups=groups)
    # The same as cross_validate routes them.
    from sklearn.model_selection import cross_validate

    with config_context(enable_metadata_routing=True):
        expected = cross_validate(
            tree, X, y, cv=GroupKFold(3), scoring={"acc": scorer},
            params={"groups": groups, "sample_weight": weights},
        )["test_acc"]  # fmt: skip
    np.testing.assert_allclose(df["value"], expected)


class _CountsFits(LogisticRegression):
    fits = 0

    def fit(self, X, y, sample_weight=None):
        type(self).fits += 1
        return super().fit(X, y, sample_weight)


def test_unset_score_requests_are_refused_before_any_fit(indexed):
    # The default scorer routes on to the estimator's score, whose request
    # was checked only when called: every fold trained first.
    from sklearn import config_context
    from sklearn.exceptions import UnsetMetadataPassedError

    X, y = indexed
    _CountsFits.fits = 0
    with config_context(enable_metadata_routing=True):
        tree = _CountsFits().set_fit_request(sample_weight=True)
        with pytest.raises(UnsetMetadataPassedError, match="score"):
            compare_variants(
                {"tree": tree}, X, y, cv=3, params={"sample_weight": np.ones(60)}
            )
    assert _CountsFits.fits == 0
