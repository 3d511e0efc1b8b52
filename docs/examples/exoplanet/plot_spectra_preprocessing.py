"""
Preprocessing that matters: per-spectrum versus per-feature scaling
===================================================================

The transit depth of an exoplanet, ``(Rp / Rs)**2``, is mostly set by the
sizes of the planet and of its star; the atmosphere only adds bumps well
under one percent of the depth (0.45 % from peak to trough for the median
planet of the bundled data, printed below) at the wavelengths where water
(or another molecule) absorbs.
Standardising each wavelength across planets, as ``StandardScaler`` does,
keeps the large differences of level between planets, beside which the
small differences of shape within a spectrum all but vanish. Normalising
each spectrum on its own removes the level and keeps the shape, which is
what carries the water signal.

This example looks at the bundled real spectra under both scalings, then
trains the same networks on each, with nothing else changed, and compares
their learning curves, read from the fitted estimator's ``history_``. A
logistic regression on the same depths shows what each scaling leaves for
a linear model.
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
# How small the atmosphere's bumps are against the depth itself, and how much
# the depth varies between planets:
spectra = X["spectra"]
depth = spectra[:, :, 1]
level = depth.mean(axis=1)
relief = (depth.max(axis=1) - depth.min(axis=1)) / level
print(f"peak to trough over mean depth, median planet: {np.median(relief):.2%}")
print(
    f"mean depth from {level.min():.1e} to {level.max():.1e} "
    f"({level.max() / level.min():.0f} times)"
)

# %%
# The mean depths of the planets differ by a factor of 57, so on a common
# axis a planet's own features are invisible. Six planets with water (blue)
# and six without (orange):
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
# How much of the variation between planets each scaling leaves to the
# level: the share of the variance along the first principal component of
# the 52 scaled depths.
from sklearn.decomposition import PCA

for name, values in [("per-feature", per_feature), ("per-spectrum", per_spectrum)]:
    share = PCA(n_components=1).fit(values).explained_variance_ratio_[0]
    print(f"{name:12s} first principal component: {share:.6f} of the variance")

# %%
# Per feature, the depths of a planet move together: one direction, the
# level, holds all but a few millionths of the variance, and the shape of
# the spectra lies in the rest. Per spectrum, the level is gone and the
# shapes spread over many directions.
#
# The difference between the mean normalised spectra of planets with and
# without water peaks at the water bands at 1.4, 1.9 and 2.7 µm, and is
# positive across the broad band around 6.3 µm, with maxima near 5.6 and
# 6.8 µm rather than at its centre. Each normalised spectrum has mean zero,
# so where water raises the bands the rest of the spectrum falls below it:
# the difference is negative between the bands. This is the signal a model
# must find.
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
# Learning curves of the same networks under both scalings
# --------------------------------------------------------
# The two preprocessings differ in one step: the depth and its uncertainty
# are either normalised per spectrum
# (:class:`~skestimators.preprocessing.SpectrumNormalizer`) or standardised
# per wavelength across planets (``NDStandardScaler(per="feature")``). Both
# are followed by one scale per channel, and the auxiliary table is
# standardised the same way in both. (The wavelength channel, the same for
# every planet, becomes zero per feature and a fixed ramp per spectrum; it
# says nothing about any planet.)
#
# Each preprocessing feeds the 1-D convolutional network of
# :func:`~skestimators.recipes.exoplanet_pipeline` in both of its
# settings: ``"conv1d"`` (dropout 0.2, weight decay, learning rate 2e-3
# lowered on plateaus, batches of 64, early stopping) and ``"conv1d_raw"``
# (no dropout or weight decay, learning rate 1e-3, batches of 32). The
# recipes' own preprocessing is replaced (``set_params(preprocess=...)``).
# Preprocessing sits inside the pipeline, so it is refitted on the training
# data only. We train all four on the same 1,000 planets for 15 epochs (the
# recipes train for 50 to 80) and keep a validation split to draw the
# curves.
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skestimators.preprocessing import InputTransformer
from skestimators.recipes import exoplanet_pipeline


def preprocessing(scaling):
    """Depths scaled per spectrum or per feature; the rest the same."""
    if scaling == "per-spectrum":
        scaler = SpectrumNormalizer(channel=1, uncertainty_channel=2)
    else:
        scaler = NDStandardScaler(per="feature")
    return InputTransformer(
        {
            "spectra": make_pipeline(scaler, NDStandardScaler(per="channel")),
            "aux": StandardScaler(),
        }
    )


train, test = train_test_split(np.arange(len(X)), train_size=1000, random_state=0)
X_train, y_train = X[train], y.iloc[train]
X_test, y_test = X[test], y.iloc[test]

fitted = {}
for network in ("conv1d", "conv1d_raw"):
    for scaling in ("per-spectrum", "per-feature"):
        pipeline = exoplanet_pipeline(network, random_state=0, device="cpu")
        pipeline.set_params(
            preprocess=preprocessing(scaling),
            spectraauxclassifier__max_epochs=15,
            spectraauxclassifier__validation_fraction=0.2,
        )
        fitted[network, scaling] = pipeline.fit(X_train, y_train)

# %%
# ``history_`` has one row per epoch: the training and validation losses and,
# per target, the validation accuracy and ROC AUC.
history = fitted["conv1d", "per-spectrum"][-1].history_
history.head()

# %%
# Colour: the scaling; line style: the network's settings.
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), layout="constrained")
for (network, scaling), pipeline in fitted.items():
    history = pipeline[-1].history_
    style = dict(
        color="tab:green" if scaling == "per-spectrum" else "tab:red",
        ls="-" if network == "conv1d" else ":",
        label=f"{network}, {scaling}",
    )
    axes[0].plot(history["train_loss"], **style)
    axes[1].plot(history["valid_water_roc_auc"], **style)
    axes[2].plot(history["valid_cloud_roc_auc"], **style)
axes[0].set_title("training loss")
axes[1].set_title("validation ROC AUC, water")
axes[2].set_title("validation ROC AUC, cloud")
for ax in axes:
    ax.set_xlabel("epoch")
axes[0].legend(fontsize="small")

# %%
# On the 1,400 planets held out from training. The split is random, and the
# bundled planets are 40 to 165 simulated atmospheres of each of 36
# star/planet systems (the rows of ``aux`` they share):
from sklearn.metrics import roc_auc_score

systems = X["aux"].groupby(list(X["aux"].columns)).ngroup().to_numpy()
seen = np.isin(systems[test], systems[train])
print(
    f"{len(np.unique(systems))} systems; {seen.mean():.0%} of the test planets "
    "belong to a system seen in training"
)


def test_aucs(model):
    proba = model.predict_proba(X_test)
    return [roc_auc_score(y_test[c], proba[:, j]) for j, c in enumerate(y.columns)]


for (network, scaling), pipeline in fitted.items():
    water_auc, cloud_auc = test_aucs(pipeline)
    print(
        f"{network:10s} {scaling:12s} ROC AUC water {water_auc:.3f}, "
        f"cloud {cloud_auc:.3f}"
    )

# %%
# A linear control
# ----------------
# Is the signal gone after per-feature scaling, or only hard to reach? A
# logistic regression on the 52 depths alone, standardised per feature
# (``StandardScaler``) or normalised per spectrum and then standardised, so
# that both see features of unit variance; at scikit-learn's default
# penalty (``C=1``) and at a very weak one (``C=1e4``). It trains in a
# fraction of a second.
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

depth_scalers = {
    "per-feature": StandardScaler(),
    "per-spectrum": make_pipeline(SpectrumNormalizer(), StandardScaler()),
}
for scaling, scaler in depth_scalers.items():
    for C in (1.0, 1e4):
        aucs = []
        for target in y.columns:
            model = make_pipeline(
                clone(scaler), LogisticRegression(C=C, max_iter=10_000)
            )
            model.fit(depth[train], y_train[target])
            proba = model.predict_proba(depth[test])[:, 1]
            aucs.append(roc_auc_score(y_test[target], proba))
        print(
            f"logistic C={C:<6g} {scaling:12s} ROC AUC water {aucs[0]:.3f}, "
            f"cloud {aucs[1]:.3f}"
        )

# %%
# What the runs show
# ------------------
# With the per-spectrum normalisation both networks reach a validation ROC
# AUC near 0.99 for water within a few epochs, and on the held-out planets
# 0.992 and 0.989 for water, 0.957 and 0.955 for cloud. With the per-feature
# scaling, under either setting, the training loss stays at ln 2 ≈ 0.69,
# the loss of predicting each label's base rate, and the AUC stays near 0.5
# (0.494 and 0.500 for water on the held-out planets): in 15 epochs neither
# network finds the signal. Since the two pipelines differ only in the
# scaler, the scaling makes the difference for these networks at these
# settings; longer training or other learning rates might find the signal,
# which the per-spectrum normalisation makes unnecessary.
#
# The signal is not destroyed. On the per-feature standardised depths, the
# logistic regression with almost no penalty (``C=1e4``) reaches a water
# AUC of 0.986, as high as on the per-spectrum normalised depths (0.987);
# at the default penalty it drops to 0.785, while the per-spectrum depths
# give 0.989. For cloud the per-feature depths give the linear model less
# (0.808 at best, against 0.962). Standardising each feature is an
# invertible map and loses no information, but it leaves the shape of the
# spectra in directions that hold a few millionths of the variance (printed
# above), and both a penalty and a short descent reach those last: an L2
# penalty shrinks the directions of small variance the most (Hastie,
# Tibshirani & Friedman, *The Elements of Statistical Learning*, 2nd ed.,
# 2009, sec. 3.4.1), and for a linear model trained by gradient descent the
# error along each principal direction of the inputs shrinks at a rate set
# by its variance, slowest along the smallest (LeCun, Bottou, Orr & Müller,
# "Efficient BackProp", *Neural Networks: Tricks of the Trade*, LNCS 1524,
# 1998). The per-spectrum normalisation makes the shape the main variation
# of the inputs, and every model here finds it.
#
# The held-out planets are new atmospheres of known systems: every one of
# them belongs to a system seen in training (printed above), so these
# scores say how the models do within the 36 systems. Planets of systems
# held out whole are harder: the Notes of
# :func:`~skestimators.recipes.exoplanet_pipeline` report, for the vote of
# its network and boosting, cloud errors on 2.0 % of the planets under
# random 5-fold cross-validation and on 3.7 % under ``GroupKFold`` over the
# 36 systems (water errors 2.1 % both ways).
