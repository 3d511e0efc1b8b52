"""Shared fixtures: small, seeded data sets built once per module."""

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def blobs():
    from sklearn.datasets import make_classification

    X, y = make_classification(
        300, 8, n_informative=5, n_classes=3, random_state=0, class_sep=2.0
    )
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def two_inputs():
    rng = np.random.RandomState(0)
    spectra = rng.normal(size=(240, 12, 3)).astype(np.float32)
    aux = rng.normal(size=(240, 4)).astype(np.float32)
    water = (spectra[:, :, 1].mean(1) > 0).astype(int)
    cloud = (aux[:, 0] > 0).astype(int)
    return spectra, aux, np.column_stack([water, cloud])


FAST = dict(max_epochs=5, batch_size=32, lr=0.01, device="cpu", random_state=0)
