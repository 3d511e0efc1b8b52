"""Model files: the safe format (skops) against a joblib pickle.

Fits the exoplanet recipe (``exoplanet_pipeline()``, a soft vote of a
network and gradient boosting) on the bundled data, then saves and loads
each model below in both formats through :func:`skestimators.save` and
:func:`skestimators.load`, and prints a table: model, format, save and load
time (seconds, best of ``--repeat``), file size and whether the loaded model
predicts exactly what the original does. Models:

* ``exoplanet blend``: the whole recipe; it holds a torch network, which
  the safe format does not store, so only the pickle row has numbers;
* ``blend/boosting``: its fitted gradient-boosting member (a Pipeline of a
  FunctionTransformer and a MultiOutputClassifier of HistGradientBoosting);
  its function is not trusted by default and is passed to ``trusted=``;
* ``HGB on features``: HistGradientBoosting on the engineered features
  (``exoplanet_features()``), the best non-neural peer.

Run: ``python benchmarks/model_files.py`` (``--quick``: 3 epochs).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.multioutput import MultiOutputClassifier
from sklearn.pipeline import make_pipeline

import skestimators
from skestimators.datasets import load_exoplanet
from skestimators.recipes import exoplanet_features, exoplanet_pipeline


def predictions(model, X):
    proba = model.predict_proba(X)
    return np.stack(proba) if isinstance(proba, list) else np.asarray(proba)


def measure(name, model, X, fmt, folder, repeat):
    path = Path(folder) / f"{name.replace(' ', '_').replace('/', '_')}.{fmt}"
    trusted = None
    try:
        save_s = []
        for _ in range(repeat):
            start = time.perf_counter()
            skestimators.save(model, path, format=fmt)
            save_s.append(time.perf_counter() - start)
    except skestimators.ModelFileError as exc:
        return [name, fmt, "n/a", "n/a", "n/a", f"not stored: {exc}"]
    if fmt == "safe":
        from skops.io import get_untrusted_types

        trusted = get_untrusted_types(file=path)  # reviewed: the recipe's own
    load_s = []
    for _ in range(repeat):
        start = time.perf_counter()
        loaded = skestimators.load(path, trusted=trusted)
        load_s.append(time.perf_counter() - start)
    same = np.array_equal(predictions(loaded, X), predictions(model, X))
    size = path.stat().st_size
    note = f" (trusted={trusted})" if trusted else ""
    return [
        name,
        fmt,
        f"{min(save_s):.4f}",
        f"{min(load_s):.4f}",
        f"{size / 1024:.0f} KiB",
        f"{same}{note}",
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 epochs")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    X, y = load_exoplanet()
    blend = exoplanet_pipeline(random_state=0, device="cpu")
    if args.quick:
        epochs = [k for k in blend.get_params() if k.endswith("__max_epochs")]
        blend.set_params(**dict.fromkeys(epochs, 3))
    start = time.perf_counter()
    blend.fit(X, y)
    print(f"fitted exoplanet_pipeline() in {time.perf_counter() - start:.1f} s")
    boosting = blend[-1].named_estimators_["boosting"]
    X_boosting = blend[:-1].transform(X)  # what the vote's members see
    hgb = make_pipeline(
        exoplanet_features(),
        MultiOutputClassifier(HistGradientBoostingClassifier(random_state=0)),
    ).fit(X, y)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, model, X_model in [
            ("exoplanet blend", blend, X),
            ("blend/boosting", boosting, X_boosting),
            ("HGB on features", hgb, X),
        ]:
            for fmt in ("safe", "pickle"):
                rows.append(measure(name, model, X_model, fmt, folder, args.repeat))
    header = ["model", "format", "save s", "load s", "file size", "round-trip ok"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row[:5], widths)]
        print("  ".join([*cells, str(row[5])]))


if __name__ == "__main__":
    main()
