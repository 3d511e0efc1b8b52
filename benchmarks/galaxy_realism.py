"""How close are simulated galaxies to real SDSS images? Image statistics side by side.

Loads real SDSS colour images with their Galaxy Zoo 1 classes (a folder of
``images/<objid>.jpg`` and ``classes.csv``, by default
``../shared/data/galaxy_gz1``) as the image estimators see them:
:func:`~skestimators.datasets.load_image_folder`'s defaults, a centre crop of
207 px resized to 69 px. Simulates as many galaxies with
``make_galaxy_classes(n, size=69, random_state=0)`` and prints, for both, the
statistics of ``skestimators.datasets._image_statistics`` (measured on the
display values in [0, 1], the same way for both) with the ratio
simulated / real:

* sky level and sky noise: median over images of the per-image border
  median and robust standard deviation (1.4826 MAD) per channel;
  ``noise_corr``: 1 for independent noise, below 1 for noise that is smooth
  over several pixels;
* galaxy size in the stamp: half-light radius (px) of the central source,
  after sky subtraction, and the fraction of the stamp in the connected
  region above the sky + 3 sigma (at least 0.06) that holds the centre,
  medians per class; ``q90``, the 90th percentile of an image's luminance
  (how much of the stamp is bright), median per class;
* neighbouring sources: mean number of other detected regions (at least
  4 px), fraction of stamps with at least one, median peak of the brightest;
* colour of the central source: red/green and blue/green ratios of its
  sky-subtracted sums, medians per class (SDSS ellipticals are redder than
  spirals);
* spiral arms: the fraction of spirals whose winding a template of
  logarithmic spirals finds (0.5 when the arms cannot be seen);
* the centre: median peak luminance of the central 5x5 pixels, fraction of
  stamps with a saturated channel there; quantiles of the luminance of all
  pixels.

Classes are grouped as elliptical, spiral (both windings), edge_on, merger and
other (Galaxy Zoo 1's "don't know"; the simulator's "unknown").

Run: ``OMP_NUM_THREADS=1 python benchmarks/galaxy_realism.py`` (all 3,000
real images and 3,000 simulated ones, about 30 s on one core); ``--quick``
for 500 of each; ``--n N``; ``--real FOLDER``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from skestimators.datasets import load_image_folder, make_galaxy_classes
from skestimators.datasets._image_statistics import (
    galaxy_image_statistics,
    pixel_quantiles,
    spiral_handedness,
)

GROUPS = {
    "elliptical": "elliptical",
    "clockwise_spiral": "spiral",
    "anticlockwise_spiral": "spiral",
    "edge_on": "edge_on",
    "merger": "merger",
    "dont_know": "other",
    "unknown": "other",
}
PER_CLASS = ("r_half", "area", "q90", "colour_rg", "colour_bg")


def summarise(X, classes) -> pd.Series:
    """One column of the table: global and per-class statistics of ``X``."""
    stats = galaxy_image_statistics(X)
    groups = pd.Series([GROUPS[str(c)] for c in classes])
    out = {}
    for name in ("sky", "noise"):
        for band in "rgb":
            out[f"{name}_{band} (median)"] = stats[f"{name}_{band}"].median()
    out["noise_corr (median)"] = stats["noise_corr"].median()
    out["central source found (fraction)"] = (stats["area"] > 0).mean()
    for name in PER_CLASS:
        out[f"{name} (median, all)"] = stats[name].median()
    out["n_neighbours (mean)"] = stats["n_neighbours"].mean()
    out["stamps with a neighbour (fraction)"] = (stats["n_neighbours"] > 0).mean()
    peak = stats["neighbour_peak"][stats["n_neighbours"] > 0]
    out["brightest neighbour peak (median)"] = peak.median()
    out["central peak (median)"] = stats["peak"].median()
    out["centre saturated (fraction)"] = stats["saturated"].mean()
    out.update(pixel_quantiles(X).to_dict())
    classes = np.asarray(classes).astype(str)
    spiral = np.isin(classes, ["clockwise_spiral", "anticlockwise_spiral"])
    truth = np.where(classes[spiral] == "clockwise_spiral", 1, -1)
    found = spiral_handedness(X[spiral]) == truth
    out["spiral winding found by template (fraction)"] = found.mean()
    for name in PER_CLASS:
        for group in ("elliptical", "spiral", "edge_on", "merger", "other"):
            out[f"{name} (median, {group})"] = stats[name][groups == group].median()
    return pd.Series(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real", default="../shared/data/galaxy_gz1")
    parser.add_argument("--n", type=int, default=3000, help="images of each kind")
    parser.add_argument("--quick", action="store_true", help="500 images of each")
    args = parser.parse_args(argv)
    n = 500 if args.quick else args.n
    folder = Path(args.real)
    t0 = time.perf_counter()
    X_real, y_real, _ = load_image_folder(
        folder / "images", folder / "classes.csv", label_column="class_name"
    )
    if n < len(X_real):
        keep = np.sort(np.random.default_rng(0).choice(len(X_real), n, replace=False))
        X_real, y_real = X_real[keep], y_real[keep]
    t1 = time.perf_counter()
    X_sim, y_sim = make_galaxy_classes(len(X_real), size=69, random_state=0)
    t2 = time.perf_counter()
    table = pd.DataFrame(
        {"real": summarise(X_real, y_real), "simulated": summarise(X_sim, y_sim)}
    )
    table["sim/real"] = table["simulated"] / table["real"]
    t3 = time.perf_counter()
    print(f"{len(X_real)} real images ({folder}) and as many simulated ones, 69x69 px")
    with pd.option_context("display.max_rows", None, "display.width", 120):
        print(table.round(3).to_string())
    print(
        f"\nload real: {t1 - t0:.1f} s, simulate: {t2 - t1:.1f} s, "
        f"statistics: {t3 - t2:.1f} s"
    )
    return table


if __name__ == "__main__":
    main()
