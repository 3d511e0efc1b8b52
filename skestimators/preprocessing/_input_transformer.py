"""InputTransformer: the ColumnTransformer of named inputs."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import (
    _check_feature_names_in,
    _num_features,
    check_is_fitted,
    validate_data,
)

from .._multiinput import MultiInput, as_mapping

_SPECIAL = ("drop", "passthrough")


def _spec(name, value):
    """``(transformer, sources)`` from a dict value."""
    if isinstance(value, tuple):
        if len(value) != 2:
            raise ValueError(
                f"InputTransformer entry {name!r} must be a transformer, 'drop', "
                "'passthrough' or a (transformer, input_name(s)) pair."
            )
        transformer, source = value
        sources = [source] if isinstance(source, str) else list(source)
    else:
        transformer, sources = value, [name]
    if not (
        transformer in _SPECIAL
        or (hasattr(transformer, "fit") and hasattr(transformer, "transform"))
    ):
        raise TypeError(
            f"InputTransformer entry {name!r} must be a transformer with fit and "
            f"transform, 'drop' or 'passthrough'; got {transformer!r}."
        )
    return transformer, sources


def _ndim(X) -> int:
    """Number of dimensions of array-like ``X`` (sparse matrices: 2)."""
    shape = getattr(X, "shape", None)
    return np.asarray(X).ndim if shape is None else len(shape)


def _sample_shape(data):
    """Shape of one sample (``None`` when it cannot be told)."""
    shape = getattr(data, "shape", None)
    if shape is None:
        try:  # nested lists
            shape = np.shape(data)
        except (TypeError, ValueError):
            return None
    return tuple(shape[1:])


def _single_array_output(transformer) -> bool:
    """Whether the output is one array (or may be: before ``fit``).

    ``get_feature_names_out`` exists only then: scikit-learn wraps the
    outputs of transformers that have it in DataFrames (``set_output``), and
    a ``MultiInput`` output must pass as it is.
    """
    fitted = getattr(transformer, "transformers_", None)
    if fitted is None:
        return True
    if not (len(fitted) == 1 and transformer._single_input):
        raise AttributeError(
            "get_feature_names_out is only defined when the output is one array; "
            f"the output is a MultiInput with inputs {transformer.output_names_}."
        )
    inner = next(iter(fitted.values()))
    if inner == "passthrough" and transformer._single_ndim != 2:
        raise AttributeError(
            "get_feature_names_out is only defined for a 2-D output; the input "
            f"passed through has {transformer._single_ndim} dimensions."
        )
    # A transformer of 3-D data offers no feature names: its output is not
    # wrapped in a DataFrame either.
    return inner == "passthrough" or hasattr(inner, "get_feature_names_out")


class InputTransformer(TransformerMixin, BaseEstimator):
    """Transform each named input of a :class:`~skestimators.MultiInput` on its own.

    The counterpart of :class:`~sklearn.compose.ColumnTransformer` for named
    inputs of any dimensionality: each entry fits its own transformer on one
    input (or on several inputs given together as a ``MultiInput``) and the
    result is stored under the entry's name. Inputs no entry mentions are
    passed through (or dropped with ``remainder="drop"``); inputs not seen
    in ``fit`` are ignored by ``transform``, as ``ColumnTransformer`` ignores
    new columns. The output is a
    ``MultiInput``, ready for a network estimator, so preprocessing lives in a
    :class:`~sklearn.pipeline.Pipeline` and is refitted inside every CV fold.

    A plain array is treated as one input named ``"X"``; when the output then
    holds a single array, that array is returned.

    Parameters
    ----------
    transformers : dict
        ``{output_name: spec}`` where ``spec`` is a transformer (applied to the
        input of the same name), ``"drop"``, ``"passthrough"``, or a pair
        ``(transformer, input_name)`` / ``(transformer, [input_names])`` to
        read other inputs (several names give the transformer a MultiInput).
        Nested parameters are addressed as ``<output_name>__<param>``.
    remainder : {"passthrough", "drop"}, default="passthrough"
        What happens to inputs no entry reads.

    Attributes
    ----------
    transformers_ : dict
        Fitted transformers by output name.
    input_names_ : list of str
        Names of the inputs seen in ``fit``.
    output_names_ : list of str
        Names of the inputs of the output.
    n_features_in_ : int
        Number of features, for plain-array input only.

    See Also
    --------
    skestimators.MultiInput : Named inputs of equal length.
    sklearn.compose.ColumnTransformer : The same idea for columns of one table.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skestimators import MultiInput
    >>> from skestimators.preprocessing import InputTransformer
    >>> X = MultiInput(spectra=np.random.rand(6, 52, 3), aux=np.random.rand(6, 5))
    >>> Xt = InputTransformer({"aux": StandardScaler()}).fit_transform(X)
    >>> Xt.keys(), Xt["aux"].mean(axis=0).round(6).tolist() == [0.0] * 5
    (['aux', 'spectra'], True)
    """

    _parameter_constraints = {
        "transformers": [dict],
        "remainder": [StrOptions({"passthrough", "drop"})],
    }

    def __init__(self, transformers, *, remainder="passthrough"):
        self.transformers = transformers
        self.remainder = remainder

    # -- nested parameters -------------------------------------------------------------
    def get_params(self, deep=True):
        params = super().get_params(deep=False)
        if not deep or not isinstance(self.transformers, dict):
            return params
        for name, value in self.transformers.items():
            transformer, _ = _spec(name, value)
            params[name] = transformer
            if hasattr(transformer, "get_params"):
                for key, sub in transformer.get_params(deep=True).items():
                    params[f"{name}__{key}"] = sub
        return params

    def set_params(self, **params):
        if "transformers" in params or not isinstance(self.transformers, dict):
            super().set_params(
                transformers=params.pop("transformers", self.transformers)
            )
            if not isinstance(self.transformers, dict):
                return super().set_params(**params) if params else self
        transformers = dict(self.transformers)
        nested = {}
        for key, value in list(params.items()):
            head, sep, rest = key.partition("__")
            if head in transformers:
                params.pop(key)
                old, sources = _spec(head, transformers[head])
                if sep:
                    nested.setdefault(head, {})[rest] = value
                else:
                    is_pair = isinstance(transformers[head], tuple)
                    transformers[head] = (
                        (value, sources if len(sources) > 1 else sources[0])
                        if is_pair
                        else value
                    )
        for head, sub in nested.items():
            transformer, _ = _spec(head, transformers[head])
            transformer.set_params(**sub)
        if transformers != self.transformers:
            self.transformers = transformers
        return super().set_params(**params)

    # -- fitting -----------------------------------------------------------------------
    def _inputs(self, X, reset):
        # (A DOK sparse matrix is a dict too.)
        if isinstance(X, dict) and not hasattr(X, "shape") and len(X):
            X = MultiInput(**X)  # checks that the inputs have one length
        mapping = as_mapping(X)
        single = mapping is None
        if single:
            mapping = {"X": X}
            try:
                _num_features(X)
            except TypeError:
                shape = getattr(X, "shape", None)
                raise ValueError(
                    "InputTransformer expects a MultiInput, a dict of arrays or "
                    f"one array of shape (n_samples, ...); got {type(X).__name__}"
                    f"{'' if shape is None else f' of shape {shape}'}. Reshape "
                    "your data: X.reshape(-1, 1) for a single feature, "
                    "X.reshape(1, -1) for a single sample."
                ) from None
            # n_features_in_ and feature_names_in_, set (fit) or checked.
            validate_data(self, X, reset=reset, skip_check_array=True)
        elif reset:
            for name in ("n_features_in_", "feature_names_in_"):
                vars(self).pop(name, None)
        if reset:
            self.input_names_ = list(mapping)
            self._single_input = single
            self._single_ndim = _ndim(X) if single else None
        else:
            missing = [k for k in self.input_names_ if k not in mapping]
            if missing:
                raise ValueError(
                    f"X is missing the named input(s) {missing} seen during fit."
                )
        return mapping, single

    def _plan(self, names):
        plan, used = {}, set()
        for out_name, value in self.transformers.items():
            if "__" in out_name or out_name in self._get_param_names():
                raise ValueError(
                    f"InputTransformer entry {out_name!r}: an entry's name may not "
                    "contain '__' nor be a parameter of InputTransformer "
                    f"({self._get_param_names()}), since its nested parameters "
                    "are set as <name>__<param>."
                )
            transformer, sources = _spec(out_name, value)
            unknown = [s for s in sources if s not in names]
            if unknown:
                raise ValueError(
                    f"InputTransformer entry {out_name!r} reads unknown input(s) "
                    f"{unknown}; X has {list(names)}."
                )
            plan[out_name] = (transformer, sources)
            used.update(sources)
        if self.remainder == "passthrough":
            for name in names:
                if name in used:
                    continue
                if name in plan:
                    raise ValueError(
                        f"InputTransformer entry {name!r} reads other inputs, so "
                        f"the input {name!r}, which no entry reads, cannot pass "
                        "through under its name; rename the entry, or pass "
                        "remainder='drop'."
                    )
                plan[name] = ("passthrough", [name])
        return plan

    @staticmethod
    def _select(mapping, sources):
        if len(sources) == 1:
            return mapping[sources[0]]
        return MultiInput(**{s: mapping[s] for s in sources})

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, **fit_params):
        """Fit every transformer on its input(s).

        Parameters
        ----------
        X : MultiInput, dict of arrays, or array-like
            The named inputs (an array is one input named ``"X"``).
        y : array-like, default=None
            Targets, passed to each transformer's ``fit``.
        **fit_params : dict
            Passed to each transformer's ``fit``.

        Returns
        -------
        self : InputTransformer
            The fitted transformer.
        """
        self._fit(X, y, fit_params, transform=False)
        return self

    @_fit_context(prefer_skip_nested_validation=False)
    def fit_transform(self, X, y=None, **fit_params):
        """Fit every transformer and return the transformed inputs.

        Parameters
        ----------
        X : MultiInput, dict of arrays, or array-like
            The named inputs.
        y : array-like, default=None
            Targets.
        **fit_params : dict
            Passed to each transformer's ``fit_transform``.

        Returns
        -------
        Xt : MultiInput or ndarray
            The transformed inputs.
        """
        return self._fit(X, y, fit_params, transform=True)

    def _fit(self, X, y, fit_params, transform):
        mapping, single = self._inputs(X, reset=True)
        plan = self._plan(mapping)
        self.transformers_, out = {}, {}
        self._passthrough_shapes = {}
        for name, (transformer, sources) in plan.items():
            data = self._select(mapping, sources)
            if transformer == "drop":
                continue
            if transformer == "passthrough":
                self.transformers_[name] = "passthrough"
                self._passthrough_shapes[name] = _sample_shape(data)
                out[name] = data
                continue
            fitted = clone(transformer)
            with self._naming(name, single):
                if transform:
                    out[name] = fitted.fit_transform(data, y, **fit_params)
                else:
                    fitted.fit(data, y, **fit_params)
            self.transformers_[name] = fitted
        self._sources = {n: s for n, (_, s) in plan.items()}
        self.output_names_ = list(self.transformers_)
        if not self.output_names_:  # refused at fit, not first at transform
            self._pack(out, single)
        return self._pack(out, single) if transform else None

    def transform(self, X):
        """Transform each named input with its fitted transformer.

        Parameters
        ----------
        X : MultiInput, dict of arrays, or array-like
            The named inputs, with the names seen in ``fit``.

        Returns
        -------
        Xt : MultiInput or ndarray
            The transformed inputs.
        """
        check_is_fitted(self, "transformers_")
        mapping, single = self._inputs(X, reset=False)
        out = {}
        for name, fitted in self.transformers_.items():
            data = self._select(mapping, self._sources[name])
            if fitted == "passthrough":
                expected, found = self._passthrough_shapes[name], _sample_shape(data)
                if None not in (expected, found) and found != expected:
                    raise ValueError(
                        f"X[{self._sources[name][0]!r}] has samples of shape "
                        f"{found}, but {expected} in fit."
                    )
                out[name] = data
                continue
            with self._naming(name, single):
                out[name] = fitted.transform(data)
        return self._pack(out, single)

    @staticmethod
    @contextmanager
    def _naming(name, single):
        """Prefix a transformer's ValueError with its entry's name (not those
        of subclasses, e.g. NonFinitePredictionError, which keep their type)."""
        try:
            yield
        except ValueError as exc:
            if single or type(exc) is not ValueError:
                raise
            raise ValueError(f"InputTransformer entry {name!r}: {exc}") from exc

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = []
        if isinstance(self.transformers, dict):
            for name, value in self.transformers.items():
                try:
                    transformer, _ = _spec(name, value)
                except (TypeError, ValueError):
                    continue
                if transformer not in _SPECIAL:
                    inner.append(transformer.__sklearn_tags__())
        tags.input_tags.allow_nan = all(t.input_tags.allow_nan for t in inner)
        tags.input_tags.sparse = bool(inner) and all(t.input_tags.sparse for t in inner)
        return tags

    def _pack(self, out, single):
        if not out:
            raise ValueError(
                "InputTransformer drops every input (each is 'drop', and "
                "remainder drops the rest): nothing would be left to transform."
            )
        if single and len(out) == 1:
            return next(iter(out.values()))
        return MultiInput(**out)

    def set_output(self, *, transform=None):
        """Set the output container of every transformer of the entries.

        As :class:`~sklearn.compose.ColumnTransformer` does, the setting is
        passed on to the transformers, so that their 2-D outputs become
        DataFrames (``transform="pandas"``) inside the output; a
        ``MultiInput`` output stays one, and a single-array output follows
        the setting.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None, default=None
            The output container; None leaves it unchanged.

        Returns
        -------
        self : InputTransformer
            This transformer.
        """
        if transform is None:
            return self
        try:
            if _single_array_output(self):
                super().set_output(transform=transform)
        except AttributeError:
            pass  # a MultiInput output is never wrapped
        fitted = getattr(self, "transformers_", {})
        for entry in [*self.transformers.values(), *fitted.values()]:
            inner = entry[0] if isinstance(entry, tuple) else entry
            if hasattr(inner, "set_output"):
                inner.set_output(transform=transform)
        return self

    @available_if(_single_array_output)
    def get_feature_names_out(self, input_features=None):
        """Feature names of a single-array output (delegated to its transformer).

        Parameters
        ----------
        input_features : array-like of str, default=None
            Input feature names.

        Returns
        -------
        names : ndarray of str
            Output feature names.
        """
        check_is_fitted(self, "transformers_")
        fitted = next(iter(self.transformers_.values()))
        if fitted == "passthrough":
            return _check_feature_names_in(self, input_features)
        return fitted.get_feature_names_out(input_features)
