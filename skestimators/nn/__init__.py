"""Plain :mod:`torch.nn` modules (branches, heads, constraint layers, losses).

Nothing in this subpackage depends on scikit-learn; each module can be used
and tested on its own.
"""

from ._augment import (
    dihedral_transform,
    dihedral_views,
    random_affine,
    random_dihedral,
)
from ._backbones import ARCHITECTURES as ARCHITECTURES
from ._backbones import FEATURES_PATTERN as FEATURES_PATTERN
from ._backbones import PretrainedNet
from ._cnn_lstm import CNNLSTM, PooledCNN
from ._galaxy import GalaxyCNN, GalaxyResNet, GalaxyZooConstraint
from ._image_augment import ImageBatchAugment as ImageBatchAugment
from ._loss_registry import LOSS_NAMES, LOSS_PARAMS, elementwise_loss, get_loss
from ._losses import CompositeLoss
from ._mlp import MLP
from ._spectra import BRANCHES as BRANCHES
from ._spectra import SpectraAuxNet
from ._spin import SpinFeatures

# Names imported "as" themselves are for the estimators, not public (not in
# __all__).
__all__ = [
    "CNNLSTM",
    "CompositeLoss",
    "GalaxyCNN",
    "GalaxyResNet",
    "GalaxyZooConstraint",
    "LOSS_NAMES",
    "LOSS_PARAMS",
    "MLP",
    "PretrainedNet",
    "SpectraAuxNet",
    "SpinFeatures",
    "elementwise_loss",
    "PooledCNN",
    "dihedral_transform",
    "dihedral_views",
    "get_loss",
    "random_affine",
    "random_dihedral",
]
