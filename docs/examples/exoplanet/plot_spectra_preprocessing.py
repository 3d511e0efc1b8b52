"""
Preprocessing that matters: per-spectrum versus per-feature scaling
===================================================================

The transit depth of an exoplanet, ``(Rp / Rs)**2``, is mostly set by the
sizes of the planet and of its star; the atmosphere only adds bumps well
under one percent of the depth (0.45 % from peak to trough for the median
planet of the bundled data) at the wavelengths where water (or another
molecule) absorbs.
Standardising each wavelength across planets, as ``StandardScaler`` does,
keeps the large differences of level between planets and flattens the
small differences of shape within a spectrum. Normalising each spectrum on
its own keeps the shape, which is what carries the water signal.

This example looks at the bundled real spectra under both scalings, then
trains the same network on each and compares their learning curves, read
from the fitted estimator's ``history_``.
"""

# %%
# The data
# --------
# :func:`~skestimators.datasets.load_exoplanet` returns a
# :class:`~skestimators.MultiInput` with two named inputs: ``spectra``
# (planets x 52 wavelengths x 3 channels: wavelength, depth, uncertainty)
# and ``aux``, a table of stellar and orbital parameters.
import matplotlib.pyplot as plt
import numpy as np

from skestimators.datasets import load_exoplanet
from skestimators.preprocessing import NDStandardScaler, SpectrumNormalizer

X, y = load_exoplanet()
print(X)
print(y.mean().rename("fraction of planets"))
# sphinx_gallery_thumbnail_number = 2

# %%
# Raw spectra span two orders of magnitude of depth, so on a common axis a
# planet's own features are invisible. Six planets with water (blue) and six
# without (orange):
spectra = X["spectra"]
wavelength = spectra[0, :, 0]
water = y["water"].to_numpy()
rng = np.random.default_rng(0)
shown = np.concatenate(
    [rng.choice(np.flatnonzero(water == w), 6, replace=False) for w in (1, 0)]
)
colors = np.where(water[shown] == 1, "tab:blue", "tab:orange")


def set_wavelength_axis(ax):
    ax.set_xscale("log")
    ax.set_xticks([0.6, 1, 2, 4, 7], ["0.6", "1", "2", "4", "7"])
    ax.minorticks_off()
    ax.set_xlabel("wavelength (µm)")


def plot_spectra(ax, values, title):
    for row, color in zip(values[shown], colors):
        ax.plot(wavelength, row, color=color, lw=1, alpha=0.8)
    set_wavelength_axis(ax)
    ax.set_title(title)


per_feature = NDStandardScaler(per="feature").fit_transform(spectra)[:, :, 1]
per_spectrum = SpectrumNormalizer(channel=1).fit_transform(spectra)[:, :, 1]

fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), layout="constrained")
plot_spectra(axes[0], spectra[:, :, 1], "raw depth (Rp/Rs)²")
axes[0].set_yscale("log")
plot_spectra(axes[1], per_feature, "per-feature standardised")
plot_spectra(axes[2], per_spectrum, "per-spectrum normalised")
axes[0].plot([], [], color="tab:blue", label="water")
axes[0].plot([], [], color="tab:orange", label="no water")
axes[0].legend(loc="upper left", fontsize="small")

# %%
# Standardised per feature, each curve is close to a horizontal line: its
# height says how deep the transit is, not where the molecules absorb.
# Normalised per spectrum, the curves share one scale and show their bands.
# The difference between the mean normalised spectra of planets with and
# without water peaks at the water bands (1.4, 1.9, 2.7 and 6.3 µm):
# this is the signal a network must find.
difference = per_spectrum[water == 1].mean(0) - per_spectrum[water == 0].mean(0)
fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
ax.plot(wavelength, difference, marker=".", color="tab:blue")
for band in (1.4, 1.9, 2.7, 6.3):
    ax.axvline(band, color="0.6", ls=":", lw=1)
ax.axhline(0, color="0.3", lw=0.8)
set_wavelength_axis(ax)
ax.set_ylabel("water − no water")
ax.set_title("mean per-spectrum normalised depth")

# %%
# Learning curves of one network under both preprocessings
# --------------------------------------------------------
# :func:`~skestimators.recipes.exoplanet_pipeline` builds the same 1-D
# convolutional network with the package's preprocessing (``"conv1d"``:
# per-spectrum normalisation and spectral features) or on the raw spectra
# standardised per feature (``"conv1d_raw"``). Preprocessing sits inside the
# pipeline, so it is refitted on the training data only. We train both on the
# same 1,000 planets for a few epochs (the recipes train for 50 to 80) and
# keep a validation split to draw the curves.
from sklearn.model_selection import train_test_split

from skestimators.recipes import exoplanet_pipeline

train, test = train_test_split(np.arange(len(X)), train_size=1000, random_state=0)
X_train, y_train = X[train], y.iloc[train]
X_test, y_test = X[test], y.iloc[test]

fitted = {}
for variant in ("conv1d", "conv1d_raw"):
    pipeline = exoplanet_pipeline(variant, random_state=0, device="cpu")
    pipeline.set_params(
        spectraauxclassifier__max_epochs=15,
        spectraauxclassifier__validation_fraction=0.2,
    )
    fitted[variant] = pipeline.fit(X_train, y_train)

# %%
# ``history_`` has one row per epoch: the training and validation losses and,
# per target, the validation accuracy and ROC AUC.
history = fitted["conv1d"][-1].history_
history.head()

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained")
for (variant, pipeline), color in zip(fitted.items(), ("tab:green", "tab:red")):
    history = pipeline[-1].history_
    axes[0].plot(history["train_loss"], color=color, ls="--")
    axes[0].plot(history["valid_loss"], color=color, label=variant)
    axes[1].plot(history["valid_water_roc_auc"], color=color, label=variant)
    axes[2].plot(history["valid_cloud_roc_auc"], color=color, label=variant)
axes[0].set_title("loss (dashed: training)")
axes[1].set_title("validation ROC AUC, water")
axes[2].set_title("validation ROC AUC, cloud")
for ax in axes:
    ax.set_xlabel("epoch")
axes[0].legend()

# %%
# With the per-spectrum normalisation the network reaches a validation ROC
# AUC near 0.99 for water within a few epochs. With the per-feature scaling
# it learns nothing: its outputs collapse to the base rates and the AUC
# stays at 0.5. Standardising each feature is an invertible map and loses no
# information in principle, but it leaves the shape of each spectrum, the
# signal, a few percent of the differences of level between planets, and
# training never finds it. (Swapping the networks of the two pipelines gives
# the same result: the preprocessing makes the difference.)
#
# On planets neither model has seen:
from sklearn.metrics import roc_auc_score

for variant, pipeline in fitted.items():
    proba = pipeline.predict_proba(X_test)
    aucs = [roc_auc_score(y_test[c], proba[:, j]) for j, c in enumerate(y.columns)]
    print(f"{variant:12s} ROC AUC water {aucs[0]:.3f}, cloud {aucs[1]:.3f}")
