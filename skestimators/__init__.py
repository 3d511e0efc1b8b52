"""scikit-learn estimators for scientific deep learning, built on skorch and PyTorch."""

from ._multiinput import MultiInput
from .estimators import NetClassifier, NetRegressor

__version__ = "0.1.0"

__all__ = ["MultiInput", "NetClassifier", "NetRegressor", "__version__"]
