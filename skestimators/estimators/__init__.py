"""The public scikit-learn estimators, one module each."""

from ._net import NetClassifier, NetRegressor

__all__ = ["NetClassifier", "NetRegressor"]
