"""Ensembles of fitted models: soft voting that understands multilabel targets."""

from ._voting import SoftVotingClassifier

__all__ = ["SoftVotingClassifier"]
