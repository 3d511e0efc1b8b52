"""Methods of a search that delegate to its refitted ``best_estimator_``."""

from __future__ import annotations

import copy

from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted


def _delegates(attr):
    def check(self):
        if not self.refit:  # as scikit-learn's searches say it
            raise AttributeError(
                f"This {type(self).__name__} instance was initialized with "
                f"refit=False: {attr} is available only after refitting on the "
                "best parameters: fit with refit=True, or fit a clone of the "
                "estimator with best_params_ (a name such as "
                "module_params__dropout sets that key of the dict-valued "
                "parameter module_params)."
            )
        getattr(getattr(self, "best_estimator_", self.estimator), attr)
        return True

    return check


class BestEstimatorMixin:
    """predict, score... of ``best_estimator_``, and the tags of ``estimator``.

    For searches with ``estimator``, ``refit``, ``best_estimator_``,
    ``scorer_`` and ``multimetric_`` attributes, as scikit-learn's.
    """

    @available_if(_delegates("predict"))
    def predict(self, X):
        """Predict with ``best_estimator_``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    @available_if(_delegates("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of ``best_estimator_``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_proba(X)

    @available_if(_delegates("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log class probabilities of ``best_estimator_``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_log_proba(X)

    @available_if(_delegates("decision_function"))
    def decision_function(self, X):
        """Decision function of ``best_estimator_``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.decision_function(X)

    @available_if(_delegates("transform"))
    def transform(self, X):
        """Transform with ``best_estimator_``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.transform(X)

    @available_if(_delegates("inverse_transform"))
    def inverse_transform(self, X):
        """Inverse transform with ``best_estimator_``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.inverse_transform(X)

    def score(self, X, y=None):
        """Score ``best_estimator_`` with the ``refit`` metric.

        Parameters
        ----------
        X : array-like, DataFrame or MultiInput
            Inputs.
        y : array-like, default=None
            Targets.

        Returns
        -------
        score : float
            The metric that was optimised.
        """
        check_is_fitted(self, "best_estimator_")
        scorer = self.scorer_[self.refit] if self.multimetric_ else self.scorer_
        return scorer(self.best_estimator_, X, y)

    @property
    def classes_(self):
        """Class labels of ``best_estimator_``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.classes_

    @property
    def n_features_in_(self):
        """Number of features seen by ``best_estimator_``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.n_features_in_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        sub = get_tags(self.estimator)
        tags.estimator_type = sub.estimator_type
        tags.classifier_tags = copy.deepcopy(sub.classifier_tags)
        tags.regressor_tags = copy.deepcopy(sub.regressor_tags)
        tags.transformer_tags = copy.deepcopy(sub.transformer_tags)
        tags.input_tags.pairwise = sub.input_tags.pairwise
        tags.input_tags.sparse = sub.input_tags.sparse
        tags.input_tags.allow_nan = sub.input_tags.allow_nan
        tags.target_tags = copy.deepcopy(sub.target_tags)
        tags.non_deterministic = sub.non_deterministic
        return tags
