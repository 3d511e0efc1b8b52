"""
Batch scoring with the command line
===================================

A model saved with :func:`skestimators.save` (a joblib pickle and a JSON
sidecar holding versions, a checksum and the input it expects) can score
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
new = np.arange(len(X)) >= 2000  # the "new" planets we will score
model = exoplanet_pipeline("dense", device="cpu", random_state=0)
model.set_params(spectraauxclassifier__max_epochs=10)
model.fit(X[~new], y[~new])

work = Path(tempfile.mkdtemp())
path = skestimators.save(
    model, work / "exoplanet.joblib", training_data=(X[~new], y[~new])
)
print(sorted(p.name for p in work.iterdir()))

# %%
# The input: a folder like the challenge's, with ``spectra.npy`` and
# ``auxiliary.csv`` (no targets).
folder = work / "new_planets"
folder.mkdir()
np.save(folder / "spectra.npy", X["spectra"][new])
X["aux"][new].to_csv(folder / "auxiliary.csv", index=False)

# %%
# Score from the command line
# ---------------------------
# The ``skestimators`` command is installed with the package; in a shell::
#
#     skestimators info exoplanet.joblib
#     skestimators score exoplanet.joblib new_planets -o predictions.parquet
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
# One row per planet, one column per predicted probability:
import pandas as pd

predictions = pd.read_parquet(work / "predictions.parquet")
predictions.head()

# %%
# The predictions against the labels we held back:
import matplotlib.pyplot as plt
from sklearn.metrics import RocCurveDisplay

truth = y[new]
fig, ax = plt.subplots(figsize=(4.5, 4.5), layout="constrained")
for target in truth.columns:
    RocCurveDisplay.from_predictions(
        truth[target], predictions[f"proba_{target}"], name=target, ax=ax
    )
ax.set_title("new planets, scored from the command line")
