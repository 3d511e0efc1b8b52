"""An untimed first fit, so that the first timed variant of a benchmark does
not pay the process's one-off costs (imports, the first optimizer's)."""

import numpy as np


def warm_up(device="cpu"):
    """Fit a tiny network of the package on random data, on ``device`` (a
    GPU's start-up is paid there too)."""
    from skestimators import NetRegressor

    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(40, 4)), rng.normal(size=40)
    NetRegressor(max_epochs=1, device=device, random_state=0).fit(X, y)
