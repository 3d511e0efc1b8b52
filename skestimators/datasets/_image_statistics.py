"""Summary statistics of galaxy stamps, to compare simulated and real images.

Every statistic is measured on the display values (RGB in [0, 1], after the
colour composite's stretch), the same way for real and simulated images, so
that they can be compared but are not physical fluxes. Per image:

* ``sky_r``, ``sky_g``, ``sky_b``: sky level, the median of the border
  pixels (the outer ``border`` pixels on each side) per channel;
* ``noise_r``, ``noise_g``, ``noise_b``: sky noise, the robust standard
  deviation of the border pixels per channel (1.4826 times their median
  absolute deviation, which equals the standard deviation for Gaussian
  noise and ignores the few pixels of a source);
* ``noise_corr``: how smooth the sky noise is, the robust standard deviation
  of the differences of horizontally adjacent border pixels, divided by
  ``sqrt(2)`` and by the noise of the luminance: 1 for independent pixels,
  below 1 for noise correlated over several pixels (interpolated or
  compressed images);
* ``area``: size of the central source, the fraction of the stamp in the
  connected region (8-connectivity) above the detection threshold that
  contains the centre, or the region nearest to it within ``centre_radius``
  pixels; 0 when there is none;
* ``r_half``: half-light radius in pixels of the central source, the radius
  of the circle around its light-weighted centroid that holds half of its
  sky-subtracted luminance (summed over the central region);
* ``n_neighbours``: number of other detected regions of at least
  ``min_area`` pixels (stars and galaxies around the central one);
* ``neighbour_peak``: peak sky-subtracted luminance of the brightest of
  them (0 when there is none);
* ``colour_rg``, ``colour_bg``: colour of the central source, the ratios of
  its sky-subtracted red and blue to green sums (red-to-green above 1 and
  blue-to-green below 1 for a red, old stellar population);
* ``q90``: the 90th percentile of the luminance of the image's pixels, how
  much of the stamp the galaxies cover and how bright they are there;
* ``peak``: peak luminance of the centre (the brightest pixel of the
  central 5x5) and ``saturated``: whether a channel reaches 0.99 there.

:func:`spiral_handedness` tells the winding of spiral arms by template, a
measure of how visible the arms are: on the spirals of an image set, the
fraction whose Galaxy Zoo 1 winding it finds.

The luminance is the mean of the three channels. Detection: the luminance
smoothed by a Gaussian of 1 pixel, above its border median plus the larger
of ``k`` robust standard deviations of the smoothed border and ``floor``
(a floor in display units, so that a sky of zero noise, as in a compressed
image whose sky is clipped to black, does not make every pixel a source).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

_MAD = 1.4826


def _robust_std(values, axis=-1):
    med = np.median(values, axis=axis, keepdims=True)
    return _MAD * np.median(np.abs(values - med), axis=axis)


def _border_mask(size: int, border: int) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[:border], mask[-border:], mask[:, :border], mask[:, -border:] = (True,) * 4
    return mask


def _central_label(labels, n_labels, centre, centre_radius):
    """Label of the region at the centre, or nearest to it; 0 when none."""
    c = centre
    if labels[c, c]:
        return labels[c, c]
    if n_labels == 0:
        return 0
    lo, hi = c - centre_radius, c + centre_radius + 1
    window = labels[lo:hi, lo:hi]
    if not window.any():
        return 0
    ii, jj = np.nonzero(window)
    k = np.argmin((ii - centre_radius) ** 2 + (jj - centre_radius) ** 2)
    return window[ii[k], jj[k]]


def _half_light_radius(light, inside):
    """Half-light radius (px) of ``light`` over the pixels ``inside``."""
    ii, jj = np.nonzero(inside)
    w = np.maximum(light[ii, jj], 0)
    total = w.sum()
    if total <= 0:
        return 0.0
    ci, cj = (w @ ii) / total, (w @ jj) / total
    r = np.hypot(ii - ci, jj - cj)
    order = np.argsort(r)
    cum = np.cumsum(w[order])
    return float(r[order][np.searchsorted(cum, 0.5 * total)])


def galaxy_image_statistics(
    X, *, border=4, k=3.0, floor=0.06, min_area=4, centre_radius=4
) -> pd.DataFrame:
    """Statistics of each image of ``X``, one row per image (see the module).

    Parameters
    ----------
    X : array-like of shape (n_images, 3, size, size)
        RGB images in [0, 1], channels first.
    border : int, default=4
        Width in pixels of the border that measures the sky.
    k : float, default=3.0
        Detection threshold in robust standard deviations of the sky.
    floor : float, default=0.06
        Smallest detection threshold above the sky, in display units.
    min_area : int, default=4
        Smallest area in pixels of a counted neighbour.
    centre_radius : int, default=4
        A region this close to the centre (pixels) is the central source
        when none covers the centre itself.

    Returns
    -------
    DataFrame of shape (n_images, 16)
    """
    X = np.asarray(X, dtype=np.float32)
    n, _, size, _ = X.shape
    edge = _border_mask(size, border)
    sky_pixels = X[:, :, edge]  # (n, 3, n_border)
    sky = np.median(sky_pixels, axis=2)
    noise = _robust_std(sky_pixels)
    lum = X.mean(axis=1)
    rows = np.r_[np.arange(border), np.arange(size - border, size)]
    diffs = np.diff(lum[:, rows, :], axis=2).reshape(n, -1)
    noise_lum = np.maximum(_robust_std(lum[:, edge]), 1e-6)
    noise_corr = _robust_std(diffs) / np.sqrt(2) / noise_lum
    smooth = ndimage.gaussian_filter(lum, (0, 1, 1), mode="nearest")
    sky_s = np.median(smooth[:, edge], axis=1)
    thresh = sky_s + np.maximum(k * _robust_std(smooth[:, edge]), floor)
    light = lum - lum[:, edge].mean(axis=1)[:, None, None]
    c = size // 2
    centre = X[:, :, c - 2 : c + 3, c - 2 : c + 3]
    stats = {
        name: np.zeros(n)
        for name in (
            "area",
            "r_half",
            "n_neighbours",
            "neighbour_peak",
            "colour_rg",
            "colour_bg",
        )
    }
    structure = np.ones((3, 3), bool)
    for i in range(n):
        labels, n_labels = ndimage.label(smooth[i] > thresh[i], structure)
        central = _central_label(labels, n_labels, c, centre_radius)
        areas = np.bincount(labels.ravel(), minlength=n_labels + 1)
        others = [j for j in range(1, n_labels + 1) if j != central]
        others = [j for j in others if areas[j] >= min_area]
        stats["n_neighbours"][i] = len(others)
        if others:
            peaks = ndimage.maximum(light[i], labels, others)
            stats["neighbour_peak"][i] = float(np.max(peaks))
        if not central:
            stats["colour_rg"][i] = stats["colour_bg"][i] = np.nan
            continue
        inside = labels == central
        stats["area"][i] = inside.mean()
        stats["r_half"][i] = _half_light_radius(light[i], inside)
        flux = np.maximum((X[i][:, inside] - sky[i][:, None]).sum(axis=1), 1e-6)
        stats["colour_rg"][i] = flux[0] / flux[1]
        stats["colour_bg"][i] = flux[2] / flux[1]
    frame = {}
    for j, band in enumerate("rgb"):
        frame[f"sky_{band}"] = sky[:, j]
    for j, band in enumerate("rgb"):
        frame[f"noise_{band}"] = noise[:, j]
    frame["noise_corr"] = noise_corr
    frame.update(stats)
    frame["q90"] = np.quantile(lum.reshape(n, -1), 0.9, axis=1)
    frame["peak"] = centre.mean(axis=1).max(axis=(1, 2))
    frame["saturated"] = (centre.max(axis=(1, 2, 3)) >= 0.99).astype(float)
    return pd.DataFrame(frame)


def pixel_quantiles(X, quantiles=(0.5, 0.9, 0.99, 0.999)) -> pd.Series:
    """Quantiles of the luminance of all pixels of all images of ``X``."""
    lum = np.asarray(X, dtype=np.float32).mean(axis=1).ravel()
    values = np.quantile(lum, quantiles)
    return pd.Series(values, index=[f"pixel_q{100 * q:g}" for q in quantiles])


def spiral_handedness(X) -> np.ndarray:
    """Winding of the arms of each image: +1 clockwise (Z-wise), -1 anticlockwise.

    Correlates the sky-subtracted luminance, over the annulus from 2 pixels to
    the border, with logarithmic spirals of 1 to 3 arms and pitch angles of 8
    to 38 degrees, of either winding (face-on, centred), and keeps the winding
    of the best match. Rows run downward as an image is displayed; a
    clockwise spiral's arms turn clockwise when followed inward.
    """
    g = np.asarray(X, dtype=np.float64).mean(axis=1)
    n, size, _ = g.shape
    c = np.arange(size) - (size - 1) / 2
    y, x = -c[:, None], c[None, :]  # y up, as displayed
    r, phi = np.hypot(x, y), np.arctan2(y, x)
    mask = (r > 2) & (r < size / 2 - 1)
    r, phi, g = r[mask], phi[mask], g[:, mask]
    g = g - g.mean(axis=1, keepdims=True)
    scores = {}
    for s in (1, -1):
        scores[s] = np.zeros(n)
        for arms in (1, 2, 3):
            for pitch in (8, 12, 16, 20, 25, 30, 38):
                phase = arms * (phi - s * np.log(r) / np.tan(np.deg2rad(pitch)))
                response = np.abs(g @ np.exp(-1j * phase))
                scores[s] = np.maximum(scores[s], response)
    return np.where(scores[1] > scores[-1], 1, -1)
