"""scikit-learn's common estimator checks for the spectral transformers."""

import pytest
from sklearn.utils.estimator_checks import (
    check_do_not_raise_errors_in_init_or_set_params,
    check_estimator_cloneable,
    check_estimator_repr,
    check_estimator_tags_renamed,
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
    check_valid_tag_types,
    parametrize_with_checks,
)

from skestimators.preprocessing import (
    ChannelSelector,
    NDStandardScaler,
    PhysicsFeatures,
    SpectralFeatures,
    SpectrumNormalizer,
)

# 2-D input is a set of single-channel spectra; the channel settings below are the
# ones valid for it (the defaults target 3-D exoplanet spectra).
ESTIMATORS = [
    SpectrumNormalizer(),
    SpectrumNormalizer(method="median"),
    ChannelSelector(channels=0),
    SpectralFeatures(ratios=False, snr=False),
    NDStandardScaler(),
    NDStandardScaler(per="feature"),
]

EXPECTED_FAILED_CHECKS: dict = {}


@parametrize_with_checks(
    ESTIMATORS,
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(
        type(est).__name__, {}
    ),
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# PhysicsFeatures takes a MultiInput (spectra + auxiliary table), never a 2-D array,
# so scikit-learn skips all its data checks (tag two_d_array=False); run the API
# checks that need no data.
@pytest.mark.parametrize(
    "check",
    [
        check_estimator_cloneable,
        check_estimator_tags_renamed,
        check_valid_tag_types,
        check_estimator_repr,
        check_no_attributes_set_in_init,
        check_do_not_raise_errors_in_init_or_set_params,
        check_parameters_default_constructible,
        check_get_params_invariance,
        check_set_params,
    ],
    ids=lambda check: check.__name__,
)
def test_physics_features_api(check):
    check("PhysicsFeatures", PhysicsFeatures())
