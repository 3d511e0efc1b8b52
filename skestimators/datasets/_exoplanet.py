"""Exoplanet transmission spectra: the CNES challenge files and a simulator."""

from __future__ import annotations

import warnings
import zipfile
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from .._multiinput import MultiInput
from ..preprocessing import (
    AUX_COLUMNS,
    WATER_BANDS_UM,
    equilibrium_temperature,
    scale_height,
    surface_gravity,
)
from ._tables import read_csv_table

__all__ = ["load_exoplanet", "make_exoplanet"]

_BUNDLED = Path(__file__).parent / "data" / "exoplanet"
TARGET_COLUMNS = ("water", "cloud")

_M_SUN, _R_SUN, _T_SUN = 1.989e30, 6.957e8, 5772.0
_M_EARTH, _R_EARTH = 5.972e24, 6.371e6
_H_PLANCK, _C_LIGHT = 6.62607015e-34, 2.99792458e8
_K_B = 1.380649e-23
#: Depth uncertainty of one of 52 bins at 2 um, for a Sun-like star.
_SIGMA_REF = 2e-6


# -- loading -----------------------------------------------------------------------
def _check_file(path: Path, what: str) -> None:
    """Refuse a missing ``path`` (FileNotFoundError) or a folder in its place."""
    if not path.exists():
        raise FileNotFoundError(f"Missing {what}: {path} does not exist.")
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise ValueError(f"{path} is {kind}, not a {what}.")


def _read_spectra(path: Path) -> np.ndarray:
    _check_file(path, "spectra file")
    try:
        spectra = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        # A file starting as a zip archive (PK) is read as an .npz archive.
        raise ValueError(f"{path} is not a valid .npy file: {err}") from err
    if not isinstance(spectra, np.ndarray):
        spectra.close()
        raise ValueError(f"{path} is not a valid .npy file: it is an .npz archive.")
    if spectra.dtype.kind not in "iuf":
        raise ValueError(
            f"{path.name} must hold real numbers; got dtype {spectra.dtype}."
        )
    if spectra.ndim != 3 or spectra.shape[2] != 3:
        raise ValueError(
            f"{path.name} must have shape (n_planets, n_wavelengths, 3) with the "
            "channels wavelength, depth, uncertainty; got shape "
            f"{spectra.shape}."
        )
    if spectra.shape[0] == 0 or spectra.shape[1] == 0:
        raise ValueError(f"{path.name} is empty (shape {spectra.shape}).")
    spectra = spectra.astype(np.float64)
    bad = ~np.isfinite(spectra)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{path.name} contains {int(bad.sum())} NaN or infinite values "
            f"(first at index {first})."
        )
    _check_channels(spectra, path.name)
    return spectra


def _implausible_planets(spectra, aux=None) -> dict:
    """``{row: reason}`` for the planets whose values cannot be right:
    wavelengths not positive or not strictly monotonic, uncertainties or
    (given ``aux``) auxiliary parameters not positive. NaN is left to its
    own check."""
    with np.errstate(invalid="ignore"):
        wavelength, uncertainty = spectra[:, :, 0], spectra[:, :, 2]
        step = np.sign(np.diff(wavelength, axis=1))
        one_way = (step == step[:, :1]).all(axis=1) & (step[:, :1] != 0).all(axis=1)
        checks = {
            "wavelengths (channel 0) not positive": (wavelength <= 0).any(axis=1),
            "wavelengths (channel 0) not running one way": ~one_way,
            "uncertainties (channel 2) not positive": (uncertainty <= 0).any(axis=1),
        }
        if aux is not None:
            checks["auxiliary parameters not positive"] = (np.asarray(aux) <= 0).any(
                axis=1
            )
    bad = {}
    for reason, rows in checks.items():
        for row in np.flatnonzero(rows):
            bad.setdefault(int(row), reason)
    return bad


def _check_channels(spectra, name):
    """Refuse spectra whose channels cannot be wavelength, depth, uncertainty
    (:func:`_implausible_planets`), or whose wavelengths run the other way in
    some planets than in the first (a planet's grid reversed)."""
    bad = _implausible_planets(spectra)
    if bad:
        row, reason = min(bad.items())
        raise ValueError(
            f"{name}: planet {row} has {reason}; are the channels in the order "
            "wavelength, depth, uncertainty?"
        )
    way = np.sign(spectra[:, -1, 0] - spectra[:, 0, 0])  # 0: one wavelength
    if (way != way[0]).any():
        row = int(np.flatnonzero(way != way[0])[0])
        raise ValueError(
            f"{name}: the wavelengths (channel 0) of planet {row} run the other "
            "way than those of planet 0 "
            f"({'decreasing' if way[0] < 0 else 'increasing'}); are the files "
            "mixed?"
        )


def _read_table(path: Path, required, optional=()) -> pd.DataFrame:
    _check_file(path, "table")
    table = read_csv_table(path)
    columns = [str(c) for c in table.columns]
    missing = [c for c in required if c not in columns]
    extra = [c for c in columns if c not in required and c not in optional]
    if missing or extra:
        raise ValueError(
            f"{path.name} must have the columns {list(required)}"
            + (f" (optionally {list(optional)})" if optional else "")
            + f"; missing {missing}, unexpected {extra}."
        )
    if table.empty:
        raise ValueError(f"{path.name} has no rows: it holds only a header.")
    non_numeric = [
        c
        for c in table.columns
        if not pd.api.types.is_numeric_dtype(table[c])
        or pd.api.types.is_bool_dtype(table[c])
    ]
    if non_numeric:
        raise ValueError(f"{path.name} has non-numeric columns {non_numeric}.")
    bad = [c for c in table.columns if not np.isfinite(table[c].to_numpy()).all()]
    if bad:
        raise ValueError(f"{path.name} has NaN or infinite values in columns {bad}.")
    return table


def _check_ids(ids, path: Path) -> pd.Index:
    if not (ids == np.round(ids)).all() or ids.duplicated().any():
        raise ValueError(f"{path.name}: column 'id' must hold unique integers.")
    return pd.Index(ids.astype(np.int64), name="id")


def _read_targets(path: Path):
    """``(y, ids)``: the targets indexed by id, or, for a file of ids only
    (planets to score), None and the ids."""
    _check_file(path, "table")
    columns = [str(c) for c in read_csv_table(path, nrows=0).columns]
    if columns == ["id"]:
        return None, _check_ids(_read_table(path, ("id",))["id"], path)
    table = _read_table(path, TARGET_COLUMNS, optional=("id",))
    for column in TARGET_COLUMNS:
        if not table[column].isin([0, 1]).all():
            raise ValueError(f"{path.name}: column {column!r} must hold only 0 and 1.")
    y = table[list(TARGET_COLUMNS)].astype(np.int64)
    if "id" in table:
        y.index = _check_ids(table["id"], path)
    else:
        y.index.name = "id"
    return y, y.index


def load_exoplanet(
    path: str | Path | None = None,
) -> tuple[MultiInput, pd.DataFrame | None]:
    """Load exoplanet transmission spectra in the CNES challenge format.

    A folder holds ``spectra.npy`` (``n_planets x n_wavelengths x 3``: the
    wavelength in micrometres, the transit depth ``(Rp/Rs)**2`` and its
    uncertainty), ``auxiliary.csv`` (stellar and orbital parameters, and
    optionally the planets' ``id``, as pandas' ``to_csv`` writes it) and,
    optionally, ``targets.csv`` (``id``, ``water``, ``cloud``). The rows of the
    three files describe the same planets. Every file is checked (readable,
    shaped, finite, numeric; wavelengths positive and running one way,
    uncertainties and auxiliary parameters positive); a problem raises an
    error that names the file and what is wrong. The rows are paired by
    position: ids out of increasing order give a warning, since misordered
    files cannot otherwise be told.

    Parameters
    ----------
    path : str or path-like, default=None
        The folder. ``None`` loads the copy bundled with the package: 2,400 of
        the 3,000 labelled planets of the challenge [1]_.

    Returns
    -------
    X : MultiInput
        ``spectra``: float64 array ``(n_planets, n_wavelengths, 3)``;
        ``aux``: DataFrame with the columns ``star_mass_kg, star_radius_m,
        star_temperature, planet_mass_kg, semi_major_axis_m``.
    y : DataFrame or None
        Integer columns ``water`` and ``cloud`` (0/1), indexed by ``id`` when
        ``targets.csv`` has that column; ``None`` when the folder has no
        ``targets.csv``, or one of ids only (planets to score, as
        ``skestimators score`` reads them: ``X["aux"]`` is then indexed by
        those ids).

    Raises
    ------
    FileNotFoundError
        If the folder, ``spectra.npy`` or ``auxiliary.csv`` is missing.
    ValueError
        If a file is unreadable (corrupt, not UTF-8 text, a folder), has the
        wrong shape or columns, no rows, non-numeric or non-finite values, or
        if the files disagree on the number of rows.

    See Also
    --------
    make_exoplanet : Simulated spectra with the same structure.

    Notes
    -----
    The challenge's planets are not all physical: with the radius that the
    mean depth gives (``Rp = Rs * sqrt(depth)``), 122 of the bundled planets
    are denser than 20 g/cm3, among them a system of 62 planets of 9.9e27 kg
    (about 450 g/cm3), so the surface gravities and scale heights of
    :class:`~skestimators.preprocessing.PhysicsFeatures` span a wider range
    than real planets do. Models learn from them all the same; a physical
    reading of those features should leave these planets out.

    References
    ----------
    .. [1] R. Tavenard, "Home assignment (2026)", Deep Learning course,
       EDHEC, 2026; data from a CNES challenge on the automatic analysis of
       spectra, licence CC BY-NC-SA (see :ref:`data_credits`).

    Examples
    --------
    >>> from skestimators.datasets import load_exoplanet
    >>> X, y = load_exoplanet()
    >>> X.shapes
    {'spectra': (2400, 52, 3), 'aux': (2400, 5)}
    >>> y.columns.tolist()
    ['water', 'cloud']
    """
    folder = _BUNDLED if path is None else Path(path)
    if not folder.exists():
        raise FileNotFoundError(f"Exoplanet data folder {folder} does not exist.")
    if not folder.is_dir():
        raise FileNotFoundError(f"Exoplanet data path {folder} is not a folder.")
    spectra = _read_spectra(folder / "spectra.npy")
    # pandas' to_csv writes the index: an "id" column of the planets' ids.
    table = _read_table(folder / "auxiliary.csv", AUX_COLUMNS, optional=("id",))
    own_ids = (
        _check_ids(table["id"], folder / "auxiliary.csv") if "id" in table else None
    )
    aux = table[list(AUX_COLUMNS)].astype(np.float64)
    not_positive = [c for c in AUX_COLUMNS if (aux[c] <= 0).any()]
    if not_positive:  # masses, radii, temperatures and distances
        raise ValueError(
            f"auxiliary.csv: the columns {not_positive} must be positive "
            "(masses, radii, temperatures, distances); they hold values <= 0."
        )
    targets_path = folder / "targets.csv"
    y, ids = _read_targets(targets_path) if targets_path.exists() else (None, None)
    counts = {"spectra.npy": spectra.shape[0], "auxiliary.csv": len(aux)}
    if ids is not None:
        counts["targets.csv"] = len(ids)
    if len(set(counts.values())) > 1:
        raise ValueError(f"The files disagree on the number of planets: {counts}.")
    if own_ids is not None and ids is not None and not own_ids.equals(ids):
        row = int(np.flatnonzero(own_ids != ids)[0])
        raise ValueError(
            f"The 'id' columns of auxiliary.csv and targets.csv disagree (row "
            f"{row}: {own_ids[row]} and {ids[row]}); they must name the same "
            "planet in each row."
        )
    ids = own_ids if ids is None else ids
    if ids is not None:
        aux.index = ids
        if not ids.is_monotonic_increasing and "id" in ids.names:
            warnings.warn(
                f"targets.csv: the ids are not in increasing order (first out of "
                f"order at row {int(np.flatnonzero(np.diff(ids) <= 0)[0]) + 1}). "
                "Planets are paired by row, not by id: check that spectra.npy and "
                "auxiliary.csv list them in the same order.",
                UserWarning,
                stacklevel=2,
            )
    return MultiInput(spectra=spectra, aux=aux), y


# -- simulation --------------------------------------------------------------------
def _planet_radius(mass, rng):
    """Chen & Kipping (2017) mass-radius relation with 0.08 dex scatter."""
    m = mass / _M_EARTH
    radius = np.where(
        m < 2.04,
        1.008 * m**0.279,
        np.where(m < 131.6, 0.808 * m**0.589, 14.3 * (m / 131.6) ** -0.044),
    )
    return radius * _R_EARTH * 10 ** rng.normal(0.0, 0.08, size=m.shape)


def _bands(log_wl, centres, widths, strengths):
    """Sum of Gaussian bands in log-wavelength, one row per sample."""
    offset = log_wl[None, :] - np.log(np.asarray(centres))[:, None]
    profile = np.exp(-0.5 * (offset / np.asarray(widths)[:, None]) ** 2)
    return np.asarray(strengths) @ profile


def _photon_rate(wavelength_um, temperature):
    """Stellar photons per log-wavelength interval, up to a constant (Planck)."""
    lam = wavelength_um[None, :] * 1e-6
    x = _H_PLANCK * _C_LIGHT / (lam * _K_B * temperature[:, None])
    return lam**-3 / np.expm1(x)


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        # From 12 wavelengths on, every water band has a bin near it, as the
        # physics features need.
        "n_wavelengths": [Interval(Integral, 12, None, closed="left")],
        "noise": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_exoplanet(
    n_samples: int = 1000,
    *,
    n_wavelengths: int = 52,
    noise: float = 1.0,
    random_state=None,
) -> tuple[MultiInput, pd.DataFrame]:
    """Simulate exoplanet transmission spectra with water and cloud labels.

    Stars, planets and orbits are drawn within the bounds of the CNES
    challenge data (star mass 2.8e29-2.5e30 kg, radius 1.25e8-1e9 m,
    temperature 2960-6169 K, planet mass 5e24-1e28 kg, semi-major axis
    3e9-4.4e10 m), not from its distribution: planet masses are log-normal
    around 4e25 kg and stay below about 1e27 kg, where the challenge holds a
    system of 62 planets at 9.9e27 kg. The
    planet radius follows the Chen & Kipping (2017) mass-radius relation with
    scatter; the scale height ``H = k T_eq / (mu m_u g)`` follows from the
    equilibrium temperature and the surface gravity. The apparent altitude of
    the atmosphere at each wavelength, in scale heights, is the log-sum-exp of
    its opacity sources: water bands at 1.4, 1.9, 2.7 and 6.3 um (2 to 6
    scale heights, when ``water=1``), methane and carbon dioxide bands
    (present at random, independent of the labels), a Rayleigh slope, and
    a grey cloud deck 2.5 to 6 scale heights high (when ``cloud=1``), which
    flattens the features below it and lifts the whole spectrum. The depth is
    ``((Rp + H * altitude) / Rs)**2``; its uncertainty follows the photon
    noise of a black-body star of the drawn size and temperature. The
    challenge's uncertainties follow another model (at each wavelength a
    fixed multiple of the planet's mean depth) and are smaller: at 2 um,
    around Sun-like stars, a median of 6.8e-8 against 1.5e-6 here.
    The features are stronger too: the median range of a spectrum is 3.9 %
    of its mean depth here and 0.45 % in the challenge data (2,400 planets
    of each), with uncertainties 0.31 % and 0.046 % of the depth. Measured
    against its own uncertainties, a simulated spectrum's range (8.7 times
    the mean uncertainty) is close to the challenge's (9.3 times), but a
    feature read relative to the depth alone separates the labels more
    easily here than in the challenge data.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of planets.
    n_wavelengths : int, default=52
        Number of wavelengths (at least 12, so that every water band has a
        bin near it), log-spaced from 7.28 down to 0.55 um (the order of the
        real data).
    noise : float, default=1.0
        Scale of the Gaussian noise added to the depth, relative to the
        uncertainty channel; 0 gives noiseless spectra.
    random_state : int, RandomState instance or None, default=None
        Seed of the draws; the same seed gives the same data.

    Returns
    -------
    X : MultiInput
        ``spectra``: float64 array ``(n_samples, n_wavelengths, 3)`` with the
        channels wavelength (um), depth and uncertainty; ``aux``: DataFrame
        with the columns of :func:`load_exoplanet`.
    y : DataFrame
        Integer columns ``water`` and ``cloud``, independent Bernoulli(0.5).

    See Also
    --------
    load_exoplanet : The real data, in the same structure.

    Examples
    --------
    >>> from skestimators.datasets import make_exoplanet
    >>> X, y = make_exoplanet(10, random_state=0)
    >>> X.shapes
    {'spectra': (10, 52, 3), 'aux': (10, 5)}
    >>> y.columns.tolist()
    ['water', 'cloud']
    """
    rng = check_random_state(random_state)
    n = n_samples
    star_mass = np.exp(rng.uniform(np.log(2.8e29), np.log(2.5e30), n))
    star_radius = _R_SUN * (star_mass / _M_SUN) ** 0.8 * 10 ** rng.normal(0, 0.03, n)
    star_radius = np.clip(star_radius, 1.25e8, 1.0e9)
    star_temp = _T_SUN * (star_mass / _M_SUN) ** 0.35 * 10 ** rng.normal(0, 0.02, n)
    star_temp = np.clip(star_temp, 2960.0, 6169.0)
    planet_mass = np.clip(10 ** rng.normal(25.6, 0.3, n), 5e24, 1e28)
    axis = np.exp(rng.uniform(np.log(3e9), np.log(4.4e10), n))
    planet_radius = _planet_radius(planet_mass, rng)
    temperature = equilibrium_temperature(star_temp, star_radius, axis)
    height = scale_height(temperature, surface_gravity(planet_mass, planet_radius))

    water = rng.randint(0, 2, n)
    cloud = rng.randint(0, 2, n)
    wavelength = np.geomspace(7.28, 0.55, n_wavelengths)
    log_wl = np.log(wavelength)
    water_shape = _bands(
        log_wl, WATER_BANDS_UM, (0.05, 0.05, 0.06, 0.07), (0.7, 0.8, 1.0, 1.0)
    )
    methane = _bands(log_wl, (2.3, 3.3, 7.7), (0.04, 0.05, 0.06), (0.6, 1.0, 1.0))
    carbon = _bands(log_wl, (2.0, 4.3), (0.03, 0.05), (0.3, 1.0))
    opacity = [
        np.zeros((n, n_wavelengths)),
        (water * rng.uniform(2, 6, n))[:, None] * water_shape,
        (rng.randint(0, 2, n) * rng.uniform(0, 5, n))[:, None] * methane,
        (rng.randint(0, 2, n) * rng.uniform(0, 5, n))[:, None] * carbon,
        rng.uniform(-2, 4, n)[:, None] - 4.0 * (log_wl - np.log(0.55)),
        np.where(cloud == 1, rng.uniform(2.5, 6, n), -np.inf)[:, None],
    ]
    altitude = np.logaddexp.reduce(np.stack(np.broadcast_arrays(*opacity)), axis=0)
    radius = planet_radius[:, None] + height[:, None] * altitude
    depth = (radius / star_radius[:, None]) ** 2

    # Photon noise: relative to a Sun-sized, Sun-hot star at 2 um on 52 bins.
    bin_width = np.log(7.28 / 0.55) / (n_wavelengths - 1)
    reference = _photon_rate(np.array([2.0]), np.array([_T_SUN]))[0, 0]
    photons = (star_radius[:, None] / _R_SUN) ** 2 * _photon_rate(wavelength, star_temp)
    photons = photons / reference * bin_width / (np.log(7.28 / 0.55) / 51)
    uncertainty = _SIGMA_REF / np.sqrt(photons)
    observed = depth + noise * uncertainty * rng.standard_normal(depth.shape)

    spectra = np.stack(
        [np.broadcast_to(wavelength, depth.shape), observed, uncertainty], axis=-1
    )
    aux = pd.DataFrame(
        np.column_stack([star_mass, star_radius, star_temp, planet_mass, axis]),
        columns=list(AUX_COLUMNS),
    )
    y = pd.DataFrame({"water": water, "cloud": cloud})
    y.index.name = aux.index.name = "id"
    return MultiInput(spectra=spectra, aux=aux), y
