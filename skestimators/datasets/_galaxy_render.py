"""Rendering of simulated galaxies as colour images.

Every light component is evaluated on the pixel grid for the galaxies that
have it (vectorised over galaxies), with faint background galaxies and stars
around them, and the image is blurred by each galaxy's PSF. Then, roughly as
the SDSS colour composites of the Galaxy Zoo images were made [1]_ [2]_: the
sky left over by the sky subtraction, correlated sky noise and photon noise
are added, the image is smoothed over about a pixel (the resampling of the
survey's 0.396 arcsec pixels onto the cutout's grid, and the resizing of the
cutout to the stamp), and the asinh stretch of Lupton et al. maps the fluxes
of the three bands (R, G, B standing for SDSS i, r, g) to display values in
[0, 1] with their colours kept.

The constants are set so that statistics of the stamps of ``make_galaxy_zoo``
at ``size=69`` match those of SDSS Galaxy Zoo 1 images loaded as
``load_image_folder`` loads them (``benchmarks/galaxy_realism.py``): sky level
and noise, their correlation, the colours of ellipticals and spirals, the
peak brightness of the centres, the sizes of the galaxies in the stamp and
the number of neighbouring sources.

Handedness: a spiral pattern follows ``phi = phi0 + s * ln(r) / tan(pitch)``
in the disk plane, with angles counterclockwise as the image is displayed
(row 0 at the top). With ``s = +1`` an arm turns counterclockwise when
followed outward, i.e. clockwise when followed from its tip inward: a "Z-wise"
spiral, called clockwise in Galaxy Zoo 1. Flipping the image along its width
axis (``np.flip(X, axis=-1)``) maps ``x -> -x`` and so ``s -> -s``.

References
----------
.. [1] R. Lupton et al., "Preparing red-green-blue images from CCD data",
   PASP 116, 133-137, 2004.
.. [2] C. Lintott et al., "Galaxy Zoo: morphologies derived from visual
   inspection of galaxies from the Sloan Digital Sky Survey", MNRAS 389,
   1179-1189, 2008.
"""

from __future__ import annotations

import numpy as np
from scipy import special
from scipy.ndimage import gaussian_filter

from ._galaxy_morphology import (
    ARTIFACT,
    DISK,
    DISTURBED,
    DUST,
    IRREGULAR,
    LENS,
    MERGER,
    OTHER,
    RING,
    SMOOTH,
)

# Colours (R, G, B = SDSS i, r, g) of old stars (bulges, ellipticals), of the
# disk light and of young stars (arms, knots), as ratios of the flux in each
# band: ellipticals come out with R/G about 1.23 and B/G about 0.71, as the
# centres of SDSS ellipticals in their gri composites; disks are less red.
_OLD = np.array([0.96, 0.78, 0.55])
_DISK = np.array([0.7, 0.56, 0.49])
_YOUNG = np.array([0.4, 0.46, 0.53])
_STAR = np.array([1.0, 0.95, 0.85])
_FAINT_RED = np.array([1.0, 0.6, 0.35])  # distant background galaxies
_SOFT = 0.008  # softening radius of cusps, in field units
_BASE_PIXEL = 2 / 69  # pixel size for which m["noise"] is the noise per pixel
# asinh stretch (Lupton et al. 2004): linear below _STRETCH, logarithmic
# above, display value 1 at a mean flux of _SATURATION
_STRETCH, _SATURATION = 0.045, 40.0
# sky left over by the survey's sky subtraction (display values about 0.02,
# 0.02, 0.012) and the sky noise per unit of m["noise"] (display noise about
# 0.012 for the median galaxy, smoothed over _RESAMPLING pixels of a 69-px
# stamp by the resampling of the cutouts and their resizing)
_SKY = np.array([0.006, 0.006, 0.0035], np.float32)
_NOISE, _RESAMPLING = 0.37, 0.8
# surface brightness of a disk seen at axis ratio qd: 1 / qd ** _INCLINED,
# the optically thin limit, for qd down to _THIN
_INCLINED, _THIN = 1.0, 0.12
_COMPANION = 2.0  # peak of a merging companion, per unit of m["odd_amp"]


def _sersic_b(n):
    return 2 * n - 1 / 3 + 0.009876 / n


def _sersic(r, re, n):
    return np.exp(-_sersic_b(n) * ((r / re) ** (1 / n) - 1))


def _sersic_flux(re, n, q):
    """Total flux of a Sersic profile of unit surface brightness at ``re``."""
    b = _sersic_b(n)
    return 2 * np.pi * n * re**2 * q * np.exp(b) * special.gamma(2 * n) / b ** (2 * n)


class _Canvas:
    """Flux images of a chunk of galaxies, with helpers to add components."""

    def __init__(self, m, sl, size, extent):
        self.m = {k: v[sl] for k, v in m.items()}
        self.n = len(self.m["kind"])
        pix = 2 * extent / size
        c = ((np.arange(size) + 0.5) * pix - extent).astype(np.float32)
        self.x, self.y = c[None, None, :], -c[None, :, None]  # y up
        self.flux = np.zeros((self.n, 3, size, size), np.float32)

    def col(self, idx, name):
        return self.m[name][idx].astype(np.float32)[:, None, None]

    def frame(self, idx, angle, dx=0.0, dy=0.0):
        """Coordinates rotated by ``angle``, around the centre shifted by dx, dy."""
        a = self.col(idx, angle) if isinstance(angle, str) else angle
        xc = self.x - self.col(idx, "x0") - dx
        yc = self.y - self.col(idx, "y0") - dy
        cos, sin = np.cos(a), np.sin(a)
        return xc * cos + yc * sin, -xc * sin + yc * cos

    def add(self, idx, image, colour):
        tint = self.m["tint"][idx] * colour
        self.flux[idx] += tint[:, :, None, None].astype(np.float32) * image[:, None]


def _disk_frame(cv, idx):
    xr, yr = cv.frame(idx, "pa")
    xd, yd = xr, yr / cv.col(idx, "qd")
    return xr, yr, xd, yd, np.sqrt(xd**2 + yd**2 + _SOFT**2)


def _smooth(cv, idx):
    xr, yr = cv.frame(idx, "pa")
    r = np.sqrt(xr**2 + (yr / cv.col(idx, "q")) ** 2 + _SOFT**2)
    image = cv.col(idx, "ie") * _sersic(r, cv.col(idx, "re"), cv.col(idx, "sersic"))
    faint = np.where(cv.m["kind"][idx] == ARTIFACT, 0.15, 1.0)
    cv.add(idx, image * faint[:, None, None].astype(np.float32), _OLD)


def _disk(cv, idx):
    m = {k: v[idx] for k, v in cv.m.items()}
    xr, yr, xd, yd, rd = _disk_frame(cv, idx)
    h, qd = cv.col(idx, "h"), cv.col(idx, "qd")
    # an inclined disk shows more stars along each line of sight
    i0 = cv.col(idx, "i0") / np.maximum(qd, _THIN) ** _INCLINED
    i0 = i0 * np.where(m["odd"] == IRREGULAR, 0.4, 1.0)[:, None, None]
    disk = i0 * np.exp(-rd / h)
    # spiral arms: logarithmic spirals in the disk plane, bluer than the disk
    phi = np.arctan2(yd, xd)
    arms, s = cv.col(idx, "arms"), cv.col(idx, "handedness")
    tan_pitch = np.tan(np.deg2rad(cv.col(idx, "pitch")))
    psi = arms * (phi - s * np.log(rd / h) / tan_pitch - cv.col(idx, "arm_phase"))
    inner = np.maximum(0.8, cv.col(idx, "bar_len") * (cv.col(idx, "bar") > 0)) * h
    amp = cv.col(idx, "arm_amp") * (1 - np.exp(-((rd / inner) ** 2)))
    profile = ((1 + np.cos(psi)) / 2) ** 3 / 0.3125
    cv.add(idx, disk * (1 - amp), _DISK)
    cv.add(idx, disk * amp * profile, _YOUNG)
    # bar: a flat elongated component in the disk plane
    bar = m["bar"] > 0
    if bar.any():
        a = (cv.col(idx, "bar_len") * h)[bar]
        b = cv.col(idx, "bar_angle")[bar]
        xb = xd[bar] * np.cos(b) + yd[bar] * np.sin(b)
        yb = -xd[bar] * np.sin(b) + yd[bar] * np.cos(b)
        rho = np.sqrt((xb / a) ** 2 + (yb / (a * cv.col(idx, "bar_q")[bar])) ** 2)
        cv.add(idx[bar], 0.7 * (cv.col(idx, "bar") * i0)[bar] * np.exp(-(rho**3)), _OLD)
    # bulge: Sersic, boxy for some, with the flux set by bulge-to-total
    q_b = np.where(m["boxy"], 0.6, m["q_b"])[:, None, None].astype(np.float32)
    c = np.where(m["boxy"], 3.0, 2.0)[:, None, None].astype(np.float32)
    r_b = (np.abs(xr) ** c + np.abs(yr / q_b) ** c) ** (1 / c)
    r_b = np.sqrt(r_b**2 + _SOFT**2)
    bt, re_b, n_b = cv.col(idx, "bt"), cv.col(idx, "re_b"), cv.col(idx, "n_b")
    disk_flux = 2 * np.pi * h**2 * i0 * qd
    ie_b = bt / (1 - bt) * disk_flux / _sersic_flux(re_b, n_b, q_b)
    cv.add(idx, ie_b * _sersic(r_b, re_b, n_b), _OLD)
    # rings around the disk
    ring = m["odd"] == RING
    if ring.any():
        radius = (h * (1.2 + 2 * cv.col(idx, "odd_dist")))[ring]
        image = np.exp(-0.5 * ((rd[ring] - radius) / (0.12 * radius)) ** 2)
        cv.add(idx[ring], 0.35 * (i0 * cv.col(idx, "odd_amp"))[ring] * image, _YOUNG)


def _dust(cv, idx):
    """Dust lanes along the mid-plane of edge-on disks, redder light behind."""
    xr, yr = cv.frame(idx, "pa")
    width = 0.35 * cv.col(idx, "qd") * cv.col(idx, "h") + 0.004
    depth = 1.5 * cv.col(idx, "odd_amp") * np.exp(-0.5 * (yr / width) ** 2)
    depth = depth * np.exp(-np.abs(xr) / (3 * cv.col(idx, "h")))
    tau = np.array([0.8, 1.0, 1.3], np.float32)[None, :, None, None]
    cv.flux[idx] *= np.exp(-tau * depth[:, None])


def _blob(cv, idx, centre_dist, sigma_major, sigma_minor, amp, colour):
    """Elongated Gaussians at distance ``centre_dist`` along ``odd_angle``."""
    angle = cv.col(idx, "odd_angle")
    dx, dy = centre_dist * np.cos(angle), centre_dist * np.sin(angle)
    u, v = cv.frame(idx, angle, dx, dy)
    image = np.exp(-0.5 * ((u / sigma_major) ** 2 + (v / sigma_minor) ** 2))
    cv.add(idx, amp * image, colour)


def _odd(cv, idx):
    m = {k: v[idx] for k, v in cv.m.items()}
    scale = np.where(m["kind"] == DISK, m["h"], m["re"])[:, None, None]
    scale = scale.astype(np.float32)
    amp, dist = cv.col(idx, "odd_amp"), cv.col(idx, "odd_dist")
    for kind, select in [(k, m["odd"] == k) for k in (LENS, DISTURBED, OTHER, MERGER)]:
        if not select.any():
            continue
        i, a, d, s = idx[select], amp[select], dist[select], scale[select]
        if kind == LENS:  # a thin blue arc around the galaxy
            xr, yr = cv.frame(i, cv.col(i, "odd_angle"))
            r, phi = np.sqrt(xr**2 + yr**2), np.arctan2(yr, xr)
            image = np.exp(-0.5 * ((r - 0.8 * d) / 0.012) ** 2 - (phi / 0.6) ** 2)
            cv.add(i, 0.8 * a * image, _YOUNG)
        elif kind == DISTURBED:  # lopsided plume
            _blob(cv, i, 1.2 * s, 1.6 * s, 0.6 * s, 0.35 * a, _DISK)
        elif kind == OTHER:  # a compact blue knot
            _blob(cv, i, 0.5 * d, 0.015, 0.015, 1.5 * a, _YOUNG)
        else:  # companion galaxy and a tidal bridge
            size = cv.col(i, "odd_size")
            _blob(cv, i, d, size, 0.7 * size, _COMPANION * a, _OLD)
            _blob(cv, i, 0.5 * d, 0.45 * d, 0.03, 0.12 * a, _DISK)
    irregular = m["odd"] == IRREGULAR
    for j in range(cv.m["clump_xy"].shape[1]):
        i = idx[irregular]
        cx, cy = (cv.m["clump_xy"][i, j] * (1.2 * m["h"][irregular])[:, None]).T
        u, v = cv.frame(i, 0.0, cx[:, None, None], cy[:, None, None])
        sigma = 0.3 * cv.col(i, "h")
        image = np.exp(-0.5 * (u**2 + v**2) / sigma**2)
        cv.add(
            i, (cv.m["clump_amp"][i, j, None, None] * image).astype(np.float32), _YOUNG
        )


def _artifacts(cv, idx, rng):
    """Central bright stars with spikes, satellite trails; foreground stars."""
    star = idx[cv.m["artifact"][idx] == 0]
    dx, dy = cv.frame(star, 0.0)
    core = np.exp(-0.5 * (dx**2 + dy**2) / 0.012**2)
    spikes = np.exp(-np.abs(dx) / 0.3 - 0.5 * (dy / 0.004) ** 2)
    spikes += np.exp(-np.abs(dy) / 0.3 - 0.5 * (dx / 0.004) ** 2)
    cv.add(star, 40 * core + 2 * spikes, np.ones(3))
    trail = idx[cv.m["artifact"][idx] == 1]
    xr, yr = cv.frame(trail, "pa", 0.0, 0.05)
    image = 2.0 * np.exp(-0.5 * (yr / 0.006) ** 2)
    channel = rng.integers(3, size=len(trail))
    cv.flux[trail, channel] += image


def _gaussians(cv, i, xy, flux, sigma, colour):
    """Add round Gaussian sources to the images ``i`` of ``cv``.

    ``xy`` (k, 2) are their centres, ``flux`` (k,) their total fluxes,
    ``sigma`` their widths (a number, or (k, 1, 1)) and ``colour`` their
    (R, G, B) ratios, (3, 1, 1) or (k, 3, 1, 1).
    """
    sx, sy = xy.T
    dx = cv.x - sx[:, None, None].astype(np.float32)
    dy = cv.y - sy[:, None, None].astype(np.float32)
    peak = flux[:, None, None] / (2 * np.pi * sigma**2)
    image = peak * np.exp(-0.5 * (dx**2 + dy**2) / sigma**2)
    cv.flux[i] += (colour * image[:, None]).astype(np.float32)


def _stars(cv):
    """Foreground stars (unresolved: the width of the PSF before blurring)."""
    for j in range(cv.m["star_xy"].shape[1]):
        i = np.flatnonzero(cv.m["star_flux"][:, j] > 0)
        _gaussians(
            cv, i, cv.m["star_xy"][i, j], cv.m["star_flux"][i, j], 0.006,
            _STAR[:, None, None],
        )  # fmt: skip


def _field(cv):
    """Faint background galaxies and stars scattered over the field."""
    for j in range(cv.m["field_xy"].shape[1]):
        i = np.flatnonzero(cv.m["field_flux"][:, j] > 0)
        if not len(i):
            continue
        sigma = cv.m["field_size"][i, j][:, None, None].astype(np.float32)
        red = cv.m["field_red"][i, j][:, None]
        colour = (1 - red) * _STAR + red * _FAINT_RED
        _gaussians(
            cv, i, cv.m["field_xy"][i, j], cv.m["field_flux"][i, j], sigma,
            colour[:, :, None, None],
        )  # fmt: skip


def _composite(flux):
    """Colour composite of fluxes ``(n, 3, h, w)``: display values in [0, 1].

    The asinh stretch of Lupton et al. (2004) applied to the mean of the three
    bands, with the same factor for each band so that colours are kept, and
    a pixel whose brightest band would pass 1 scaled down as a whole (a
    bright core keeps its colour instead of turning white).
    """
    x = flux.mean(axis=1, keepdims=True) / np.float32(_STRETCH)
    gain = np.ones_like(x)
    np.divide(np.arcsinh(x), x, out=gain, where=np.abs(x) > 1e-4)
    gain /= np.float32(_STRETCH * np.arcsinh(_SATURATION / _STRETCH))
    flux *= gain
    flux /= np.maximum(flux.max(axis=1, keepdims=True), np.float32(1))
    return np.clip(flux, 0, 1, out=flux)


def _render(m, size: int, extent: float, rng: np.random.Generator) -> np.ndarray:
    """Images (n, 3, size, size) in [0, 1] of the galaxies ``m``.

    The field of view spans ``[-extent, extent]`` field units; ``extent=1``
    is the central crop that ``make_galaxy_zoo`` returns.
    """
    n = len(m["kind"])
    out = np.empty((n, 3, size, size), np.float32)
    pix = 2 * extent / size
    chunk = max(1, 2_000_000 // (size * size))
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        cv = _Canvas(m, sl, size, extent)
        kind, odd = cv.m["kind"], cv.m["odd"]
        _smooth(cv, np.flatnonzero(kind != DISK))
        _disk(cv, np.flatnonzero(kind == DISK))
        _dust(cv, np.flatnonzero(odd == DUST))
        _odd(cv, np.flatnonzero((odd != 0) & (kind != ARTIFACT)))
        _artifacts(cv, np.flatnonzero(kind == ARTIFACT), rng)
        _stars(cv)
        _field(cv)
        flux = cv.flux
        for i in range(cv.n):
            sigma = cv.m["psf"][i] / pix
            flux[i] = gaussian_filter(flux[i], (0, sigma, sigma), mode="constant")
        # sky left over by the sky subtraction, sky noise and photon noise;
        # then the resampling onto the cutout's grid and its resizing, which
        # smooth the noise and the image alike over about a pixel
        sky = (_NOISE * cv.m["noise"] * _BASE_PIXEL / pix)[:, None, None, None]
        shot = np.sqrt(np.maximum(flux, 0)) * (0.03 * _BASE_PIXEL / pix)
        noise = rng.standard_normal(flux.shape, dtype=np.float32)
        flux += _SKY[:, None, None] + (sky.astype(np.float32) + shot) * noise
        blur = _RESAMPLING * _BASE_PIXEL / pix
        flux = gaussian_filter(flux, (0, 0, blur, blur), mode="reflect")
        out[sl] = _composite(flux)
    assert SMOOTH == 0  # smooth galaxies and faint artifacts share _smooth
    return out
