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
from ._cnn_lstm import CNNLSTM, PooledCNN
from ._galaxy import GalaxyCNN, GalaxyResNet, GalaxyZooConstraint
from ._galaxy_tree import (
    GALAXY_ZOO_ANSWERS,
    GALAXY_ZOO_COLUMNS,
    GALAXY_ZOO_QUESTIONS,
    GalaxyZooQuestion,
)
from ._loss_registry import LOSS_NAMES, LOSS_PARAMS, elementwise_loss, get_loss
from ._losses import CompositeLoss
from ._mlp import MLP
from ._spectra import SpectraAuxNet

__all__ = [
    "CNNLSTM",
    "CompositeLoss",
    "GALAXY_ZOO_ANSWERS",
    "GALAXY_ZOO_COLUMNS",
    "GALAXY_ZOO_QUESTIONS",
    "GalaxyCNN",
    "GalaxyResNet",
    "GalaxyZooConstraint",
    "GalaxyZooQuestion",
    "LOSS_NAMES",
    "LOSS_PARAMS",
    "MLP",
    "SpectraAuxNet",
    "elementwise_loss",
    "PooledCNN",
    "dihedral_transform",
    "dihedral_views",
    "get_loss",
    "random_affine",
    "random_dihedral",
]
