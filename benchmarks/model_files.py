"""Model files: the safe format (skops + safetensors) against a joblib pickle.

Fits every network estimator on small data and the three domain models, then
saves and loads each through :func:`skestimators.save` and
:func:`skestimators.load` in both formats, and prints a table: model, format,
save and load time (seconds, best of ``--repeat``), file size, whether the
loaded model predicts exactly what the original does. Every model is loaded
without ``trusted=``: the safe loader's defaults are enough for what the
package builds. Models:

* each estimator: ``NetRegressor``, ``NetClassifier`` (in a Pipeline with a
  StandardScaler), ``SpectraAuxClassifier``, ``ImageClassifier``,
  ``GalaxyZooRegressor``, ``SpatioTemporalRegressor``;
* ``exoplanet blend``: the whole exoplanet recipe (``exoplanet_pipeline()``,
  a soft vote of a network, gradient boosting and a support vector machine)
  on the bundled planets;
* ``soc_pipeline``: the soil-carbon recipe (a CNN-LSTM in a
  TransformedTargetRegressor) on simulated patches;
* ``galaxy pipeline``: ``ImagePreprocessor`` then ``GalaxyZooRegressor`` on
  simulated Galaxy Zoo images;
* ``HGB on features``: HistGradientBoosting on ``exoplanet_features()``.

Run: ``python benchmarks/model_files.py`` (``--quick``: 3 epochs everywhere).
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
from sklearn.preprocessing import StandardScaler

import skestimators
from skestimators import (
    GalaxyZooRegressor,
    ImageClassifier,
    NetClassifier,
    NetRegressor,
    SpatioTemporalRegressor,
    SpectraAuxClassifier,
)
from skestimators.datasets import (
    load_exoplanet,
    make_galaxy_classes,
    make_galaxy_zoo,
    make_soc,
)
from skestimators.preprocessing import ImagePreprocessor
from skestimators.recipes import exoplanet_features, exoplanet_pipeline, soc_pipeline


def predictions(model, X):
    if not hasattr(model, "predict_proba"):
        return np.asarray(model.predict(X))
    proba = model.predict_proba(X)
    return np.stack(proba) if isinstance(proba, list) else np.asarray(proba)


def measure(name, model, X, fmt, folder, repeat):
    path = Path(folder) / f"{name.replace(' ', '_').replace('/', '_')}.{fmt}"
    try:
        save_s = []
        for _ in range(repeat):
            start = time.perf_counter()
            skestimators.save(model, path, format=fmt)
            save_s.append(time.perf_counter() - start)
        load_s = []
        for _ in range(repeat):
            start = time.perf_counter()
            loaded = skestimators.load(path)  # no trusted=: the defaults suffice
            load_s.append(time.perf_counter() - start)
    except skestimators.ModelFileError as exc:
        return [name, fmt, "n/a", "n/a", "n/a", f"not stored: {exc}"]
    same = np.array_equal(predictions(loaded, X), predictions(model, X))
    return [
        name,
        fmt,
        f"{min(save_s):.4f}",
        f"{min(load_s):.4f}",
        f"{path.stat().st_size / 1024:.0f} KiB",
        str(same),
    ]


def _epochs(model, n):
    keys = [k for k in model.get_params() if k.endswith("max_epochs")]
    return model.set_params(**dict.fromkeys(keys, n))


def models(quick):
    """``(name, fitted model, X)`` for every row of the table."""
    rng = np.random.RandomState(0)
    table = rng.normal(size=(300, 8)).astype("float32")
    small = dict(max_epochs=3 if quick else 10, device="cpu", random_state=0)
    out = [
        ("NetRegressor", NetRegressor(**small).fit(table, table[:, 0]), table),
        (
            "NetClassifier pipeline",
            make_pipeline(StandardScaler(), NetClassifier(**small)).fit(
                table, (table[:, 0] > 0).astype(int)
            ),
            table,
        ),
    ]
    X, y = load_exoplanet()
    out.append(
        (
            "SpectraAuxClassifier",
            SpectraAuxClassifier(**small).fit(X[:600], y[:600]),
            X[:600],
        )
    )
    images, classes = make_galaxy_classes(300, size=32, random_state=0)
    out.append(
        ("ImageClassifier", ImageClassifier(**small).fit(images, classes), images)
    )
    gz_X, gz_y = make_galaxy_zoo(300, size=32, random_state=0)
    out.append(
        ("GalaxyZooRegressor", GalaxyZooRegressor(**small).fit(gz_X, gz_y), gz_X)
    )
    galaxy = make_pipeline(ImagePreprocessor(), GalaxyZooRegressor(**small))
    out.append(("galaxy pipeline", galaxy.fit(gz_X, gz_y), gz_X))
    soc_X, soc_y, _ = make_soc(300, n_years=3, random_state=0)
    out.append(
        (
            "SpatioTemporalRegressor",
            SpatioTemporalRegressor(**small).fit(soc_X, soc_y),
            soc_X,
        )
    )
    soc = _epochs(soc_pipeline(random_state=0, device="cpu"), small["max_epochs"])
    out.append(("soc_pipeline", soc.fit(soc_X, soc_y), soc_X))
    blend = exoplanet_pipeline(random_state=0, device="cpu")
    if quick:
        _epochs(blend, 3)
    start = time.perf_counter()
    blend.fit(X, y)
    print(f"fitted exoplanet_pipeline() in {time.perf_counter() - start:.1f} s")
    out.append(("exoplanet blend", blend, X))
    hgb = make_pipeline(
        exoplanet_features(),
        MultiOutputClassifier(HistGradientBoostingClassifier(random_state=0)),
    ).fit(X, y)
    out.append(("HGB on features", hgb, X))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 epochs")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, model, X_model in models(args.quick):
            for fmt in ("safe", "pickle"):
                rows.append(measure(name, model, X_model, fmt, folder, args.repeat))
    header = ["model", "format", "save s", "load s", "file size", "round-trip ok"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row[:5], widths)]
        print("  ".join([*cells, str(row[5])]))
    stored = sum(1 for r in rows if r[1] == "safe" and r[5] == "True")
    print(f"safe format: {stored} of {len(rows) // 2} models round-trip exactly")


if __name__ == "__main__":
    main()
