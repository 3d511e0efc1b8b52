"""Deep ensembles: the spread of independently trained networks."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn import get_config
from sklearn.base import (
    BaseEstimator,
    MetaEstimatorMixin,
    RegressorMixin,
    _fit_context,
    clone,
    is_classifier,
)
from sklearn.utils import check_random_state, get_tags
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    process_routing,
)
from sklearn.utils.validation import check_is_fitted

__all__ = ["DeepEnsembleRegressor"]


class DeepEnsembleRegressor(MetaEstimatorMixin, RegressorMixin, BaseEstimator):
    """Train several copies of a regressor and report their spread.

    A deep ensemble [1]_ fits ``n_estimators`` clones of ``estimator``, each
    from its own random initialisation, batch order and validation split
    (its ``random_state`` is drawn from this ensemble's). ``predict`` returns
    their mean and, with ``return_std=True``, their standard deviation: the
    disagreement of equally good networks, an estimate of the model
    (epistemic) uncertainty that needs no dropout, at ``n_estimators`` times
    the cost of one fit. ``estimator`` may be a network, a
    :class:`~sklearn.pipeline.Pipeline` ending in one (its ``random_state``
    is then set through the pipeline's step names) or a
    :class:`~sklearn.compose.TransformedTargetRegressor`: the spread is
    computed on the predictions, in the units of ``y``.

    Only this disagreement is reported. The networks of [1]_ also predicted
    the variance of the noise, trained by a Gaussian likelihood, and the
    spread of their mixture (noise and disagreement) was calibrated; members
    trained on squared errors have no noise term, and their spread is
    narrower than their error: nominal 90 % Gaussian intervals covered 34 to
    44 % in the benchmark of the user guide. Calibrate intervals with
    conformal prediction. A fit that fails leaves the ensemble as it was.

    Parameters
    ----------
    estimator : regressor
        The model to clone and fit; any regressor with ``fit`` and
        ``predict`` whose parameters include a ``random_state`` (for a
        pipeline, that of any of its steps).
    n_estimators : int, default=5
        Number of members (the original study [1]_ used five).
    random_state : int, RandomState instance or None, default=None
        Draws the ``random_state`` of each member.

    Attributes
    ----------
    estimators_ : list of regressor
        The fitted members.
    n_features_in_ : int
        Number of features seen in ``fit`` (when the members record it).
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen in ``fit``, when ``X`` was a DataFrame
        with string column names (and the members record them).

    See Also
    --------
    skestimators.NetRegressor : Its ``predict(X, return_std=True)`` uses
        Monte Carlo dropout instead, at the cost of one fit.

    References
    ----------
    .. [1] B. Lakshminarayanan, A. Pritzel and C. Blundell, "Simple and
       scalable predictive uncertainty estimation using deep ensembles",
       NeurIPS 2017.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from skestimators import NetRegressor
    >>> from skestimators.uncertainty import DeepEnsembleRegressor
    >>> X, y = make_regression(200, 5, random_state=0)
    >>> ens = DeepEnsembleRegressor(NetRegressor(max_epochs=3, device="cpu"),
    ...                             n_estimators=3, random_state=0).fit(X, y / 100)
    >>> y_pred, y_std = ens.predict(X[:4], return_std=True)
    >>> y_pred.shape, y_std.shape
    ((4,), (4,))
    >>> bool((y_std > 0).all())
    True
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"])],
        "n_estimators": [Interval(numbers.Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator, *, n_estimators=5, random_state=None):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, **fit_params):
        """Fit every member on ``(X, y)``.

        Parameters
        ----------
        X : array-like, DataFrame or MultiInput
            Training inputs, as ``estimator`` takes them.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets.
        **fit_params : dict
            Passed to each member's ``fit`` (``sample_weight``, ``groups``;
            to a pipeline member under its step's name, such as
            ``netregressor__sample_weight``). With scikit-learn's metadata
            routing enabled, the members receive what they request
            (``set_fit_request``), as in any meta-estimator. A refit holds
            the previous members until the new ones are all fitted.

        Returns
        -------
        self : DeepEnsembleRegressor
            The fitted ensemble.
        """
        if is_classifier(self.estimator):
            raise ValueError(
                f"DeepEnsembleRegressor averages the predictions of regressors; "
                f"{type(self.estimator).__name__} is a classifier, whose class "
                "labels cannot be averaged. To average classifiers' "
                "probabilities, use skestimators.ensemble.SoftVotingClassifier."
            )
        seeds = _member_seeds(self.estimator)
        if not seeds:
            raise ValueError(
                f"DeepEnsembleRegressor needs a random_state parameter in "
                f"{type(self.estimator).__name__} (or in a step of it) to make "
                "its members differ; it has none."
            )
        if get_config()["enable_metadata_routing"]:
            fit_params = process_routing(self, "fit", **fit_params).estimator.fit
        rng = check_random_state(self.random_state)
        members = []  # kept only once every member is fitted
        for _ in range(self.n_estimators):
            seed = int(rng.randint(0, 2**31 - 1))
            member = clone(self.estimator).set_params(**dict.fromkeys(seeds, seed))
            members.append(member.fit(X, y, **fit_params))
        self.estimators_ = members
        for name in ("n_features_in_", "feature_names_in_"):
            if hasattr(members[0], name):
                setattr(self, name, getattr(members[0], name))
            elif name in vars(self):  # from an earlier fit on other data
                delattr(self, name)
        return self

    def predict(self, X, return_std=False):
        """Mean prediction of the members, and optionally their spread.

        Parameters
        ----------
        X : array-like, DataFrame or MultiInput
            Inputs.
        return_std : bool, default=False
            Also return the standard deviation of the members' predictions.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Mean of the members' predictions.
        y_std : ndarray of the shape of ``y_pred``
            Standard deviation of the members' predictions. Only returned
            when ``return_std`` is True.
        """
        check_is_fitted(self, "estimators_")
        preds = np.stack(
            [np.asarray(m.predict(X), dtype=np.float64) for m in self.estimators_]
        )
        y_pred = preds.mean(0)
        if not return_std:
            return y_pred
        return y_pred, preds.std(0, ddof=1)

    def get_metadata_routing(self):
        """How ``fit`` passes metadata on to the members (metadata routing).

        Returns
        -------
        routing : MetadataRouter
            The members' requests, from ``estimator``.
        """
        return (
            MetadataRouter(owner=self)
            .add_self_request(self)
            .add(
                estimator=self.estimator,
                method_mapping=MethodMapping().add(caller="fit", callee="fit"),
            )
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            inner = get_tags(self.estimator)
        except (AttributeError, TypeError, ValueError):  # invalid: fit will say so
            return tags
        tags.input_tags = inner.input_tags
        tags.target_tags.multi_output = inner.target_tags.multi_output
        tags.non_deterministic = inner.non_deterministic
        return tags


def _member_seeds(estimator):
    """The ``random_state`` parameters of ``estimator`` (nested ones included)."""
    return sorted(
        name
        for name in estimator.get_params(deep=True)
        if name == "random_state" or name.endswith("__random_state")
    )
