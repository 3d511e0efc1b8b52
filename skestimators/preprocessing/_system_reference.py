"""Spectra of planets relative to the other planets of their system."""

from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from .._stack import caller_stacklevel
from ._physics import _PlanetTransformer

__all__ = ["SystemReference"]

#: Relative difference within which two planets' auxiliary values are taken
#: as equal (float32 keeps them to 6e-8, a CSV of six significant digits to
#: 5e-6). A fixed rounding cannot do this: values near a rounding boundary
#: round apart once they went through float32.
RTOL = 1e-5


def match_systems(aux, systems, rtol=RTOL):
    """The row of ``systems`` whose values equal each planet's, within ``rtol``.

    Parameters
    ----------
    aux : ndarray of shape (n_planets, n_columns)
        The auxiliary values, strictly positive.
    systems : ndarray of shape (n_systems, n_columns)
        The auxiliary values of each system, strictly positive.
    rtol : float, default=RTOL
        Largest relative difference, in every column.

    Returns
    -------
    index : ndarray of shape (n_planets,)
        The first matching row of ``systems``, -1 where none matches.
    """
    values = np.log(np.asarray(aux, dtype=np.float64))
    index = np.full(len(values), -1)
    if not len(systems) or not len(values):
        return index
    for i, found in enumerate(_neighbours(np.log(systems), values, rtol)):
        if len(found):
            index[i] = found.min()
    return index


def _neighbours(reference, values, rtol):
    """For each row of ``values``, the rows of ``reference`` within ``rtol`` in
    every column (a Chebyshev ball: O(log n) per row, however many systems
    share a star)."""
    from sklearn.neighbors import KDTree

    tree = KDTree(np.asarray(reference, dtype=np.float64), metric="chebyshev")
    return tree.query_radius(values, r=rtol)


def group_systems(aux, rtol=RTOL):
    """Planets grouped by auxiliary values equal within ``rtol``.

    Parameters
    ----------
    aux : ndarray of shape (n_planets, n_columns)
        The auxiliary values, strictly positive.
    rtol : float, default=RTOL
        Largest relative difference, in every column.

    Returns
    -------
    first : ndarray of shape (n_systems,)
        The first planet of each system, in the order of their values.
    inverse : ndarray of shape (n_planets,)
        The system of each planet.
    """
    aux = np.asarray(aux, dtype=np.float64)
    unique, first, inverse = np.unique(
        aux, axis=0, return_index=True, return_inverse=True
    )
    # Each distinct row joins the first earlier system within rtol, if any.
    values = np.log(unique)
    owner = np.arange(len(unique))
    for row, found in enumerate(_neighbours(values, values, rtol)):
        earlier = found[found < row]
        representatives = earlier[owner[earlier] == earlier]
        if len(representatives):
            owner[row] = representatives.min()
    systems, owner = np.unique(owner, return_inverse=True)
    return first[systems], owner[inverse.ravel()]


class SystemReference(_PlanetTransformer):
    """Transit depths relative to the mean spectrum of the planet's system.

    Planets share a system when their five auxiliary values (star mass,
    radius and temperature, planet mass, semi-major axis) agree within a
    relative 1e-5, so a table that went through float32 or a CSV file of six
    significant digits still matches. In :meth:`fit` the transformer records, for every
    system with at least ``min_planets`` planets, their mean transit depth and
    mean uncertainty at each wavelength. :meth:`transform` returns each
    planet's depth minus the mean depth of its system, in units of the
    system's uncertainty, followed by the number of planets behind that
    reference.

    The residual isolates what differs between planets that share a star, a
    mass and an orbit: their atmospheres. A cloud deck flattens a spectrum
    against the clear-sky spectra of its siblings, which a model cannot
    infer from one spectrum when the features are near the noise level.

    Planets of a system not seen in :meth:`fit`, or seen with fewer than
    ``min_planets`` planets, have no reference: their residuals are 0 and
    their count is 0. A model must treat them separately (the ``"blend"``
    recipe of :func:`~skestimators.recipes.exoplanet_pipeline` scores them
    without the reference).

    The transformer consumes two inputs at once, so it is applied to the whole
    :class:`~skestimators.MultiInput`, not inside an ``InputTransformer`` for
    one name. It needs the raw transit depths and their uncertainties: place
    it before any :class:`SpectrumNormalizer`.

    Parameters
    ----------
    spectra_key : str, default="spectra"
        Name of the spectra in ``X``: an array ``(n_samples, n_wavelengths,
        n_channels)``.
    aux_key : str, default="aux"
        Name of the auxiliary table in ``X``: a DataFrame with the columns
        ``star_mass_kg, star_radius_m, star_temperature, planet_mass_kg,
        semi_major_axis_m`` (other columns are ignored), or an array with
        these five columns in this order.
    depth_channel : int, default=1
        Channel of the spectra holding the transit depth.
    uncertainty_channel : int, default=2
        Channel of the spectra holding the depth's uncertainty (standard
        deviation), strictly positive.
    min_planets : int, default=5
        Fewest planets of one system in :meth:`fit` for it to get a
        reference (with ``per_class``, in every class).
    per_class : bool, default=False
        Whether each system gets one reference per class of ``y`` (per
        combination of classes when ``y`` holds several targets), the mean
        spectrum of the system's planets of that class in :meth:`fit`, instead
        of one for all its planets. :meth:`transform` then returns the
        residuals against each reference in turn: how far the planet is from
        its cloudy and its clear siblings, say, in units of the noise.
    centre : bool, default=False
        Whether to subtract from each planet's residuals their mean over the
        wavelengths. The depth level is set by the planet's radius, which
        varies among the planets of a system; centred residuals keep only the
        shape of the spectrum against its siblings.

    Attributes
    ----------
    systems_ : ndarray of shape (n_systems, 5)
        Auxiliary values of the systems with a reference (those of their
        first planet).
    reference_ : ndarray of shape (n_systems, n_wavelengths)
        Mean transit depth of each system; with ``per_class``, of shape
        ``(n_systems, n_classes, n_wavelengths)``, one per class.
    scale_ : ndarray of shape (n_systems, n_wavelengths)
        Mean uncertainty of each system (with ``per_class``, of each class
        in each system), the unit of the residuals.
    classes_ : ndarray
        With ``per_class`` only: the classes of ``y`` (for several targets,
        their combinations, one per row), in the order of the references.
    n_planets_ : ndarray of shape (n_systems,)
        Number of planets behind each reference.
    n_wavelengths_ : int
        Number of wavelengths of the spectra seen in :meth:`fit`.
    n_channels_ : int
        Number of channels of the spectra seen in :meth:`fit`.

    See Also
    --------
    PhysicsFeatures : Physical features of one planet and its star.

    Notes
    -----
    A planet seen in :meth:`fit` is part of its own reference, so its
    residuals are smaller, by about ``1 / n`` for a system of ``n``
    planets (the expected size of its noise part shrinks by
    ``sqrt((n - 1) / (n + 1))``), than those of a new planet of the same
    system: 0.6 to 2.5 % on the bundled data, 18 % at ``min_planets=5``.

    In the CNES challenge data bundled with the package, 2,400 planets share
    36 star/planet systems, each with atmospheres drawn at random: 40 to 165
    planets per system. The residuals lower the cloud errors of gradient
    boosting from 2.7 % to 0.25 % in 5-fold cross-validation (``python
    benchmarks/exoplanet.py --errors hgb``, then ``--errors hgb_reference``);
    water errors barely change (2.3 % and 2.25 %). They cannot help for a
    system without siblings in the training data, such as a newly observed
    planet around a new star.

    Examples
    --------
    >>> import numpy as np
    >>> from skestimators import MultiInput
    >>> from skestimators.datasets import make_exoplanet
    >>> from skestimators.preprocessing import SystemReference
    >>> X, y = make_exoplanet(10, random_state=0)
    >>> aux = np.repeat(X["aux"].to_numpy()[:2], 5, axis=0)  # two systems
    >>> X = MultiInput(spectra=X["spectra"], aux=aux)
    >>> reference = SystemReference().fit(X)
    >>> reference.n_planets_.tolist()
    [5, 5]
    >>> reference.transform(X).shape
    (10, 53)
    """

    _channels = ("depth_channel", "uncertainty_channel")

    _parameter_constraints: dict = {
        "spectra_key": [str],
        "aux_key": [str],
        "depth_channel": [Interval(Integral, 0, None, closed="left")],
        "uncertainty_channel": [Interval(Integral, 0, None, closed="left")],
        "min_planets": [Interval(Integral, 1, None, closed="left")],
        "per_class": ["boolean"],
        "centre": ["boolean"],
    }

    def __init__(
        self,
        spectra_key="spectra",
        *,
        aux_key="aux",
        depth_channel=1,
        uncertainty_channel=2,
        min_planets=5,
        per_class=False,
        centre=False,
    ):
        self.spectra_key = spectra_key
        self.aux_key = aux_key
        self.depth_channel = depth_channel
        self.uncertainty_channel = uncertainty_channel
        self.min_planets = min_planets
        self.per_class = per_class
        self.centre = centre

    def _validate_inputs(self, X, reset):
        spectra, aux = self._read_inputs(X, reset=reset)
        uncertainty = spectra[:, :, self.uncertainty_channel]
        if np.any(uncertainty <= 0):
            raise ValueError(
                f"X[{self.spectra_key!r}] channel {self.uncertainty_channel} (the "
                "uncertainty) must be strictly positive."
            )
        return spectra[:, :, self.depth_channel], uncertainty, aux

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Record the mean spectrum of every system.

        Parameters
        ----------
        X : MultiInput or dict
            With the spectra under ``spectra_key`` and the auxiliary table
            under ``aux_key``.
        y : array-like of shape (n_samples,) or (n_samples, n_targets), default=None
            The classes, with ``per_class`` only (ignored otherwise).

        Returns
        -------
        self : SystemReference
            The fitted transformer.
        """
        depth, uncertainty, aux = self._validate_inputs(X, reset=True)
        first, inverse = group_systems(aux)
        counts = np.bincount(inverse, minlength=len(first))
        labels = self._classes(y, len(depth))
        n_classes = len(self.classes_) if self.per_class else 1
        shape = (len(first), n_classes, depth.shape[1])
        totals, scales = np.zeros(shape), np.zeros(shape)
        members = np.zeros((len(first), n_classes), dtype=np.int64)
        np.add.at(totals, (inverse, labels), depth)
        np.add.at(scales, (inverse, labels), uncertainty)
        np.add.at(members, (inverse, labels), 1)
        keep = members.min(axis=1) >= self.min_planets
        if not keep.any():
            warnings.warn(
                f"SystemReference: no star/planet system has {self.min_planets} "
                f"planets{' of each class' if self.per_class else ''} (min_planets="
                f"{self.min_planets}; the largest has {int(members.min(axis=1).max())}"
                "): every planet is transformed to zeros, and these features "
                "tell the model nothing.",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
        self.systems_ = aux[first][keep]
        self.n_planets_ = counts[keep]
        self.reference_ = totals[keep] / members[keep, :, None]
        self.scale_ = scales[keep] / members[keep, :, None]
        if not self.per_class:
            self.reference_, self.scale_ = self.reference_[:, 0], self.scale_[:, 0]
        return self

    def _classes(self, y, n_samples):
        """Each planet's reference (0 without ``per_class``); sets ``classes_``."""
        if not self.per_class:
            self.__dict__.pop("classes_", None)  # of an earlier per-class fit
            return np.zeros(n_samples, dtype=np.int64)
        if y is None:
            raise ValueError(
                "SystemReference(per_class=True) needs the targets: fit(X, y)."
            )
        y = np.asarray(y)
        if y.ndim not in (1, 2) or len(y) != n_samples:
            raise ValueError(
                f"y must be 1-D or 2-D with one row per planet ({n_samples}); got "
                f"shape {y.shape}."
            )
        try:
            kind = type_of_target(y, input_name="y")
        except (TypeError, ValueError):  # mixed labels: named when sorted below
            kind = "multiclass"
        if kind.startswith(("continuous", "unknown")):
            raise ValueError(
                f"SystemReference(per_class=True) needs class labels; y is {kind} "
                "(every value its own class: no system would have a reference)."
            )
        try:
            if y.ndim == 1:
                self.classes_, labels = np.unique(y, return_inverse=True)
                return labels.ravel()
            # Several targets: one reference per combination of classes,
            # found on each column's codes (object columns cannot be sorted
            # as rows).
            columns = [np.unique(c, return_inverse=True) for c in y.T]
            codes = np.column_stack([inverse.ravel() for _, inverse in columns])
        except TypeError as exc:
            raise ValueError(
                f"SystemReference(per_class=True) cannot sort the classes of y: {exc}"
            ) from None
        rows, labels = np.unique(codes, axis=0, return_inverse=True)
        self.classes_ = np.column_stack(
            [values[rows[:, j]] for j, (values, _) in enumerate(columns)]
        )
        return labels.ravel()

    def _system_index(self, aux):
        """Row of ``systems_`` for each planet, -1 where its system has none."""
        return match_systems(aux, self.systems_)

    def transform(self, X):
        """Residuals against the system's mean spectrum, and their reference size.

        Parameters
        ----------
        X : MultiInput or dict
            With the spectra under ``spectra_key`` and the auxiliary table
            under ``aux_key``.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_references * n_wavelengths + 1)
            The depth minus the system's mean depth over the system's mean
            uncertainty, at each wavelength (with ``per_class``, against each
            class's reference in the order of ``classes_``), then the number
            of planets of the system in :meth:`fit`; all 0 for planets
            without a reference.
        """
        check_is_fitted(self)
        depth, _, aux = self._validate_inputs(X, reset=False)
        index = self._system_index(aux)
        known = index >= 0
        rows = index[known]
        reference, scale = self.reference_[rows], self.scale_[rows]
        if not self.per_class:
            reference, scale = reference[:, None], scale[:, None]
        residuals = (depth[known, None] - reference) / scale
        if self.centre:
            residuals -= residuals.mean(axis=2, keepdims=True)
        width = residuals.shape[1] * depth.shape[1]
        out = np.zeros((len(depth), width + 1))
        out[known, :-1] = residuals.reshape(len(rows), width)
        out[known, -1] = self.n_planets_[rows]
        return out

    def get_feature_names_out(self, input_features=None):
        """Names of the output features.

        Parameters
        ----------
        input_features : None
            Ignored; the names do not depend on the input.

        Returns
        -------
        feature_names_out : ndarray of str
            ``residual0``, ``residual1``, ... and ``n_reference_planets``;
            with ``per_class``, ``residual0_class0``, ... for each class in
            the order of ``classes_``.
        """
        check_is_fitted(self)
        names = [f"residual{i}" for i in range(self.n_wavelengths_)]
        if self.per_class:
            names = [f"{n}_class{k}" for k in range(len(self.classes_)) for n in names]
        return np.asarray(names + ["n_reference_planets"], dtype=object)
