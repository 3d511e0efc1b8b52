"""scikit-learn's common estimator checks for the spectral transformers."""

from sklearn.utils.estimator_checks import (
    parametrize_with_checks,
)

from skestimators.preprocessing import (
    ChannelSelector,
    NDStandardScaler,
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
