"""
Batch scoring with the command line
===================================

A model saved with :func:`skestimators.save` (a file in the safe format,
which loading runs no code from, and a JSON sidecar holding versions, a
checksum and the input it expects) can score
files without any Python code: ``skestimators score MODEL INPUT... -o
OUTPUT`` reads the input in chunks, predicts each, and writes one Parquet,
CSV or ``.npy`` file. Interrupted runs resume; rows that cannot be scored
are listed instead of failing the job.

Here we train the exoplanet recipe on most of the bundled planets, save it,
write the others as a folder in the challenge's format, and score that
folder from the command line (through :mod:`subprocess`, as a shell would).
"""

# %%
# Train and save
# --------------
import tempfile
from pathlib import Path

import numpy as np

import skestimators
from skestimators.datasets import load_exoplanet
from skestimators.recipes import exoplanet_pipeline

X, y = load_exoplanet()

# %%
# The bundled planets are 40 to 165 simulated atmospheres of each of 36
# star/planet systems, which share their row of ``aux``. Planets drawn at
# random would leave every new planet's system in the training set; the
# "new" planets here are those of six whole systems the model does not see
# in training, the harder test (see the Notes of
# :func:`~skestimators.recipes.exoplanet_pipeline`).
from sklearn.model_selection import GroupShuffleSplit

systems = X["aux"].groupby(list(X["aux"].columns)).ngroup().to_numpy()
_, held_out = next(
    GroupShuffleSplit(1, test_size=6, random_state=0).split(X, groups=systems)
)
new = np.isin(np.arange(len(X)), held_out)  # the "new" planets we will score
print(f"{new.sum()} new planets of {len(np.unique(systems[new]))} systems")

model = exoplanet_pipeline("dense", device="cpu", random_state=0)
model.set_params(spectraauxclassifier__max_epochs=10)
model.fit(X[~new], y[~new])

work = Path(tempfile.mkdtemp())
path = skestimators.save(
    model, work / "exoplanet.skops", training_data=(X[~new], y[~new])
)
print(sorted(p.name for p in work.iterdir()))

# %%
# The input: a folder like the challenge's, with ``spectra.npy``,
# ``auxiliary.csv`` and a ``targets.csv`` that holds only the planets' ids
# (the labels are held back). The scored output carries these ids; without
# them, it would number the planets by row position from 0.
folder = work / "new_planets"
folder.mkdir()
np.save(folder / "spectra.npy", X["spectra"][new])
X["aux"][new].to_csv(folder / "auxiliary.csv", index=False)
y[new].index.to_frame().to_csv(folder / "targets.csv", index=False)

# %%
# Score from the command line
# ---------------------------
# The ``skestimators`` command is installed with the package; in a shell::
#
#     skestimators info exoplanet.skops
#     skestimators score exoplanet.skops new_planets -o predictions.parquet
import shutil
import subprocess
import sys

# The command next to this Python (the same environment), else on the PATH.
command = shutil.which("skestimators", path=Path(sys.executable).parent)
command = command or shutil.which("skestimators") or "skestimators"


def run(*args):
    """Run ``skestimators ARGS...``; print its messages, return its output."""
    done = subprocess.run(
        [command, *map(str, args)], capture_output=True, text=True, check=True
    )
    print(done.stderr, end="")
    return done.stdout


# %%
# ``info`` prints the sidecar as JSON: what the model is, the versions it was
# saved with, the input it expects and the names of its targets.
import json

sidecar = json.loads(run("info", path))
for key in ("final_estimator", "versions", "targets"):
    print(f"{key}: {sidecar[key]}")
print("inputs:", {k: v["shape"] for k, v in sidecar["input"]["inputs"].items()})

# %%
# ``score`` writes the output only once every chunk is done; progress bars
# and a summary go to stderr.
run("score", path, folder, "-o", work / "predictions.parquet", "--no-progress")

# %%
# One row per planet, its id first, then one column per predicted
# probability:
import pandas as pd

predictions = pd.read_parquet(work / "predictions.parquet")
predictions.head()

# %%
# The predictions against the labels we held back, joined on the id (not on
# the row order):
import matplotlib.pyplot as plt
from sklearn.metrics import RocCurveDisplay

scored = predictions.join(y, on="id", validate="one_to_one")
fig, ax = plt.subplots(figsize=(4.5, 4.5), layout="constrained")
for target in y.columns:
    RocCurveDisplay.from_predictions(
        scored[target], scored[f"proba_{target}"], name=target, ax=ax
    )
ax.set_title("new systems, scored from the command line")
