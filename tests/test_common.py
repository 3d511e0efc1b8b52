"""scikit-learn's estimator checks over every public estimator and transformer."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skestimators import NetClassifier, NetRegressor

# Small, deterministic settings: the checks fit dozens of times on ~100-300 rows.
_FAST = {
    "max_epochs": 30,
    "batch_size": 16,
    "lr": 0.01,
    "validation_fraction": None,
    "device": "cpu",
    "random_state": 0,
    "module_params": {"hidden_units": (16,)},
}

ESTIMATORS = [
    NetClassifier(**_FAST),
    NetRegressor(**_FAST),
]

# Each expected failure with its reason. Keep this list short.
EXPECTED_FAILED = {
    "check_sample_weight_equivalence_on_dense_data": (
        "Mini-batch SGD is not invariant to repeating samples: a sample of "
        "weight 2 is seen once per epoch in one batch, its copy twice in two "
        "batches with different neighbours, so the trajectories differ."
    ),
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
