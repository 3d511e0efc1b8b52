"""
Galaxy Zoo: predicted answers and output constraints
====================================================

Galaxy Zoo 2 volunteers answer a decision tree of 11 questions about each
galaxy ("smooth or features?", "edge-on?", "spiral arms?"...; Willett et
al. 2013, MNRAS 435, 2835); the Kaggle Galaxy Challenge asked for the 37
vote fractions. They obey the tree: the answers to a question sum to the
fraction of volunteers who reached it.

:class:`~skestimators.GalaxyZooRegressor` ends its network with a layer that
enforces these constraints. This example trains it on simulated galaxies
from :func:`~skestimators.datasets.make_galaxy_zoo`, shows true and
predicted answers in a grid of images, and compares the output layers on
the same cross-validation folds. Images are 32 pixels wide and the network
is tiny so that it runs in seconds on a CPU.
"""

# %%
# Simulated galaxies
# ------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from skestimators import GalaxyZooRegressor
from skestimators.datasets import make_galaxy_zoo
from skestimators.metrics import galaxy_zoo_root_mean_squared_error

X, y = make_galaxy_zoo(800, size=32, random_state=0)
print(X.shape, y.shape)
y.iloc[:3, :6]

# %%
# Train a small network on 600 galaxies, keep 200 aside.
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=200, random_state=0)
small = dict(width=8, depth=3, head_width=64, batch_size=32, lr=3e-3, device="cpu")
model = GalaxyZooRegressor(max_epochs=10, random_state=0, **small)
model.fit(X_train, y_train)
y_pred = model.predict(X_test)
baseline = np.tile(y_train.mean().to_numpy(), (len(y_test), 1))
rmse_network = galaxy_zoo_root_mean_squared_error(y_test, y_pred)
rmse_baseline = galaxy_zoo_root_mean_squared_error(y_test, baseline)
print(f"RMSE of the network:      {rmse_network:.3f}")
print(f"RMSE of the mean answers: {rmse_baseline:.3f}")

# %%
# True and predicted answers
# --------------------------
# The first question: is the galaxy smooth, does it have features or a
# disk, or is it a star or an artifact? Each panel shows the volunteers'
# fractions and, below, the network's.
q1 = ["smooth", "features", "star"]
fig, axes = plt.subplots(3, 6, figsize=(12, 7), layout="constrained")
for ax, i in zip(axes.ravel(), range(18)):
    ax.imshow(np.moveaxis(X_test[i], 0, -1))
    true = " ".join(f"{v:.2f}" for v in y_test.iloc[i, :3])
    pred = " ".join(f"{v:.2f}" for v in y_pred[i, :3])
    ax.set_title(f"true {true}\npred {pred}", fontsize=8, family="monospace")
    ax.set_axis_off()
fig.suptitle(f"Q1 answers ({', '.join(q1)})")

# %%
# Every question's predicted answers obey the tree: here Q1 sums to 1, and
# the answers of Q2 (edge-on?) sum to the "features" answer of Q1.
print(np.abs(y_pred[:, :3].sum(1) - 1).max())
print(np.abs(y_pred[:, 3:5].sum(1) - y_pred[:, 1]).max())

# %%
# Comparing the output layers
# ---------------------------
# ``constraint="divisive"`` (the output layer of the winning solution,
# Dieleman, Willett & Dambre 2015, MNRAS 450, 1441) rectifies the
# outputs and normalises each question; ``"softmax"`` applies a softmax per
# question; ``"none"`` leaves the 37 outputs free.
# :func:`~skestimators.model_selection.compare_variants` fits each on the
# same three folds of the 600 training galaxies; the scorer is the
# challenge's RMSE, negated so that higher is better as everywhere in
# scikit-learn.
from skestimators.metrics import neg_galaxy_zoo_root_mean_squared_error_scorer
from skestimators.model_selection import compare_variants, plot_comparison

variants = {
    constraint: GalaxyZooRegressor(constraint=constraint, max_epochs=6, **small)
    for constraint in ("divisive", "softmax", "none")
}
results = compare_variants(
    variants,
    X_train,
    y_train,
    cv=3,
    scoring={"-RMSE": neg_galaxy_zoo_root_mean_squared_error_scorer},
    random_state=0,
    n_jobs=2,
)
plot_comparison(results)
