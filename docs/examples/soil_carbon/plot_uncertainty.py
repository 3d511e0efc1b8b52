"""
Soil carbon with error bars: conformal intervals calibrated in space
====================================================================

A soil carbon map used for carbon accounting needs an error bar at every
pixel. Conformal prediction gives intervals with a guaranteed coverage
(90 % of the true values fall inside a 90 % interval) provided the
calibration samples are exchangeable with the places the map predicts. A
map predicts places far from the samples, so the calibration residuals must
come from held-out regions too: MAPIE's cross-conformal regressor (CV+)
calibrated on :class:`~skestimators.model_selection.SpatialBlockKFold`
folds, around the package's soil carbon recipe.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from mapie.regression import CrossConformalRegressor
from sklearn.model_selection import KFold

from skestimators.datasets import make_soc
from skestimators.model_selection import SpatialBlockKFold
from skestimators.recipes import soc_pipeline
from skestimators.uncertainty import calibration_block_size

X, y, coords = make_soc(300, n_years=3, random_state=0)


def recipe():
    """The CNN-LSTM recipe, shrunk to train in about a second."""
    return soc_pipeline(random_state=0, device="cpu").set_params(
        regressor__spatiotemporalregressor__width=8,
        regressor__spatiotemporalregressor__depth=1,
        regressor__spatiotemporalregressor__head_width=16,
        regressor__spatiotemporalregressor__max_epochs=15,
    )


# %%
# Calibrating on spatial folds, or on random ones
# -----------------------------------------------
# Both regressors are scored on the same held-out region (the easternmost
# 30 % of the samples), which neither has seen. The spatial blocks are sized
# by :func:`~skestimators.uncertainty.calibration_block_size` so that the
# calibration samples lie as far from their training samples as the region
# lies from the samples (from the coordinates alone).
# ``conformity_score="gamma"`` scales the residuals by the prediction: soil
# carbon is log-normal and its errors grow with it. The coordinates reach
# the spatial splitter as ``groups``.
test = coords[:, 0] > np.quantile(coords[:, 0], 0.7)
sizes = [2_500, 5_000, 10_000, 15_000]
block = calibration_block_size(
    coords[~test], coords[test], block_sizes=sizes, random_state=0
)
print(f"calibration blocks of {block / 1000:.1f} km")
calibrations = {
    "spatial blocks": SpatialBlockKFold(5, block_size=block, random_state=0),
    "random K-fold": KFold(5, shuffle=True, random_state=0),
}
fitted = {}
for name, cv in calibrations.items():
    mapie = CrossConformalRegressor(
        recipe(), confidence_level=0.9, conformity_score="gamma", cv=cv
    )
    groups = coords[~test] if name == "spatial blocks" else None
    mapie.fit_conformalize(X[~test], y[~test], groups=groups)
    _, pis = mapie.predict_interval(X[test])
    inside = (y[test] >= pis[:, 0, 0]) & (y[test] <= pis[:, 1, 0])
    width = np.mean(pis[:, 1, 0] - pis[:, 0, 0])
    print(f"{name:15s} coverage {inside.mean():.2f}, mean width {width:.1f}")
    fitted[name] = mapie

# %%
# The map and the width of its interval
# -------------------------------------
# :func:`~skestimators.mapping.predict_raster` with ``uncertainty="interval"``
# writes the prediction, then the lower and upper bounds, as the bands of
# one GeoTIFF (every fifth pixel here, ``stride=5``). The spatially
# calibrated regressor, refitted on every sample, maps the landscape; its
# calibration blocks are sized for the distances from the map's pixels to
# the samples.
import tempfile
from pathlib import Path

import rasterio

from skestimators.datasets import make_soc_rasters
from skestimators.mapping import predict_raster

folder = Path(tempfile.mkdtemp())
rasters = make_soc_rasters(folder, n_years=3, random_state=0)
with rasterio.open(rasters[0]) as src:
    rows, cols = np.mgrid[0 : src.height : 5, 0 : src.width : 5]
    pixels = np.column_stack(rasterio.transform.xy(src.transform, rows, cols))
block = calibration_block_size(coords, pixels, block_sizes=sizes, random_state=0)
print(f"calibration blocks for the map: {block / 1000:.1f} km")
mapie = CrossConformalRegressor(
    recipe(), confidence_level=0.9, conformity_score="gamma",
    cv=SpatialBlockKFold(5, block_size=block, random_state=0),
).fit_conformalize(X, y, groups=coords)  # fmt: skip
out = predict_raster(
    mapie, rasters, folder / "soc.tif", window=5, stride=5, uncertainty="interval"
)
with rasterio.open(out) as src:
    print(src.descriptions)
    soc, lower, upper = np.ma.masked_equal(src.read(), src.nodata)
    left, bottom, right, top = src.bounds

fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), layout="constrained")
extent = np.array([left, right, bottom, top]) / 1000
for ax, image, title, cmap in [
    (axes[0], soc, "predicted soil carbon", "YlOrBr"),
    (axes[1], upper - lower, "width of its 90 % interval", "viridis"),
]:
    shown = ax.imshow(image, extent=extent, cmap=cmap)
    ax.scatter(*coords.T / 1000, s=2, c="k", alpha=0.4)
    ax.set_title(title)
    ax.set_xlabel("km")
    fig.colorbar(shown, ax=ax, shrink=0.8)
plt.show()

# %%
# The interval is wide where carbon is high (the gamma score scales it with
# the prediction) and where the models of the calibration folds disagree.
# One held-out region is a small test: ``benchmarks/uncertainty.py``
# measures the coverage of each method over five spatial folds, where
# calibration on random folds covers clearly less than its nominal 90 %
# (see :ref:`uncertainty`).
