"""predict_raster's files: what it refuses to write, what it writes, and when
writing fails; unreadable rasters in extract_patches and predict_raster."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from skestimators.datasets import extract_patches
from skestimators.mapping import predict_raster

rasterio = pytest.importorskip("rasterio", reason="needs the geo extra")
from .test_soc_data import _write  # noqa: E402


@pytest.fixture
def paths(tmp_path):
    """Two years of a 2-band 12 x 15 raster."""
    rng = np.random.default_rng(0)
    return [
        _write(tmp_path / f"y{t}.tif", rng.normal(size=(2, 12, 15))) for t in (0, 1)
    ]


class _Constant:
    """Predicts ``values`` (one column per output) for every patch, recording
    how many patches it was given; ``return_std`` adds a std of 1."""

    def __init__(self, *values):
        self.values, self.calls = np.array(values, dtype=float), []

    def predict(self, X, return_std=False):
        self.calls.append(len(X))
        pred = np.tile(self.values, (len(X), 1))
        pred = pred[:, 0] if pred.shape[1] == 1 else pred
        return (pred, np.ones(len(X))) if return_std else pred


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


# -- refused up front ----------------------------------------------------------
def test_refuses_to_overwrite_an_input_raster(tmp_path, paths):
    # The map silently replaced the first year's covariates.
    before = paths[0].read_bytes()
    model = _Constant(1.0)
    for output in (paths[0], tmp_path / "." / "y0.tif", str(paths[1])):
        with pytest.raises(ValueError, match=r"y[01]\.tif: it is one of the input"):
            predict_raster(model, paths, output, window=3)
    os.symlink(paths[0], tmp_path / "link.tif")
    with pytest.raises(ValueError, match="one of the input rasters"):
        predict_raster(model, paths, tmp_path / "link.tif", window=3)
    assert paths[0].read_bytes() == before and not model.calls


def test_refuses_a_folder_and_a_bad_nodata_before_predicting(tmp_path, paths):
    # A folder failed only after the whole prediction; nodata="x" with a bare
    # TypeError; nodata=1e40 after the first chunk.
    model = _Constant(1.0)
    (tmp_path / "maps").mkdir()
    with pytest.raises(IsADirectoryError, match=r"maps: it is a folder"):
        predict_raster(model, paths, tmp_path / "maps", window=3)
    with pytest.raises(TypeError, match="nodata must be a number.*'x'"):
        predict_raster(model, paths, tmp_path / "m.tif", window=3, nodata="x")
    for bad in (1e40, -np.inf, True):
        with pytest.raises((ValueError, TypeError), match="nodata"):
            predict_raster(model, paths, tmp_path / "m.tif", window=3, nodata=bad)
    assert not model.calls and _files(tmp_path) == ["maps", "y0.tif", "y1.tif"]
    out = predict_raster(model, paths, tmp_path / "m.tif", window=3, nodata=np.nan)
    with rasterio.open(out) as src:
        assert np.isnan(src.nodata) and np.isnan(src.read(1)[0, 0])
    out = predict_raster(model, paths, tmp_path / "m.tif", window=3, nodata=-3e38)
    with rasterio.open(out) as src:
        assert src.read(1)[0, 0] == np.float32(-3e38)


# -- what is written -----------------------------------------------------------
@pytest.mark.parametrize(
    "model, uncertainty, names",
    [
        (_Constant(1.0), "std", ("prediction", "std")),
        (_Constant(1.0, 2.0), None, (None, None)),
        (_Constant(1.0, 2.0, 3.0), None, (None, None, None)),
    ],
)
def test_the_bands_do_not_depend_on_the_data(
    tmp_path, paths, model, uncertainty, names
):
    # With no pixel predictable (a window wider than the raster), the map had
    # one unnamed band whatever the model's outputs.
    maps = {}
    for window in (3, 31):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "window=31 is wider", UserWarning)
            out = predict_raster(
                model,
                paths,
                tmp_path / f"{window}.tif",
                window=window,
                uncertainty=uncertainty,
            )
        with rasterio.open(out) as src:
            maps[window] = src.read()
            assert src.descriptions == names
    assert maps[31].shape == maps[3].shape and (maps[31] == -9999.0).all()


class _NonFinite:
    """Predicts 1, with NaN, inf and a float32 overflow for some patches."""

    def predict(self, X):
        pred = np.ones(len(X))
        pred[0], pred[1], pred[2] = np.nan, np.inf, 1e39
        return pred


def test_warns_of_non_finite_predictions(tmp_path, paths):
    # NaN predictions were written as nodata without a word, an overflow of
    # float32 as inf.
    with pytest.warns(
        RuntimeWarning, match=r"NaN for 1 and an infinite .* for 2 "
    ) as w:
        out = predict_raster(_NonFinite(), paths, tmp_path / "m.tif", window=3)
    assert [r.filename for r in w] == [__file__]
    with rasterio.open(out) as src:
        values = src.read(1)
    assert np.isfinite(values).all()
    assert (values[1, 1:4] == -9999.0).all() and values[1, 4] == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predict_raster(_Constant(2.0), paths, tmp_path / "n.tif", window=3)


def test_the_tally_of_a_map_holds_counts_only(tmp_path, paths):
    # A window wider than the rasters stored a tuple in the tally of counts.
    from skestimators.mapping import _raster

    tally = _raster._write_map(
        _Constant(1.0), paths, tmp_path / "w.tif", 31, 4, 1, 64, -9999.0, None
    )[0]
    assert all(isinstance(count, int) for count in tally.values()), tally
    assert sum(tally.values()) == tally["too_wide"] == 12 * 15  # pixels
    with pytest.warns(UserWarning, match=r"window=31 is wider .*\(12 x 15 pixels\)"):
        predict_raster(_Constant(1.0), paths, tmp_path / "m.tif", window=31)


# -- failures ------------------------------------------------------------------
def _truncated_copy(path, folder):
    data = path.read_bytes()
    broken = folder / "broken.tif"
    broken.write_bytes(data[: len(data) // 2])  # the header and tags are first
    return broken


def test_names_a_raster_that_cannot_be_read(tmp_path, paths):
    # rasterio's "Read failed. See previous exception for details." named no file.
    broken = _truncated_copy(paths[1], tmp_path)
    with pytest.raises(ValueError, match=r"Cannot read raster .*broken\.tif"):
        extract_patches([paths[0], broken], [[500_045.0, 5_299_945.0]], 3)
    with pytest.raises(ValueError, match=r"Cannot read raster .*broken\.tif"):
        predict_raster(_Constant(1.0), [paths[0], broken], tmp_path / "m.tif", window=3)
    assert "m.tif" not in " ".join(_files(tmp_path))


_FULL_DISK = """
import json, resource, signal, sys
import numpy as np
from skestimators.mapping import predict_raster

class Noise:
    def predict(self, X):
        return np.random.default_rng(len(X)).random(len(X))

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))
try:
    predict_raster(Noise(), sys.argv[1], sys.argv[2], window=1, chunk_rows=8)
    print(json.dumps(["returned", ""]))
except Exception as err:
    print(json.dumps([type(err).__name__, str(err)]))
"""


def test_a_map_that_cannot_be_written_in_full_raises(tmp_path):
    # On a full disk GDAL's failed writes raised nothing: a corrupt map
    # replaced the earlier one.
    pytest.importorskip("resource")
    rng = np.random.default_rng(0)
    source = _write(tmp_path / "source.tif", rng.normal(size=(1, 120, 120)))
    out = predict_raster(_Constant(1.0), source, tmp_path / "map.tif", window=1)
    before = out.read_bytes()
    assert len(before) < 16384  # a constant map compresses
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_FULL_DISK), str(source), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    kind, message = json.loads(run.stdout.splitlines()[-1])
    assert kind == "OSError", message
    assert f"Could not write the map {out}" in message and "disk full" in message
    assert out.read_bytes() == before  # the earlier map, untouched
    assert _files(tmp_path) == ["map.tif", "source.tif"]  # no partial map
