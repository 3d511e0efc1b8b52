"""Galaxy Zoo data: simulator, Kaggle files, metric, projection, image preprocessing."""

import os
import pickle
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image, ImageOps
from sklearn.base import clone
from sklearn.dummy import DummyRegressor
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score
from sklearn.utils._param_validation import InvalidParameterError

from skestimators.datasets import (
    GALAXY_CLASSES,
    load_galaxy_zoo,
    load_image_folder,
    make_galaxy_classes,
    make_galaxy_zoo,
    write_galaxy_zoo_folder,
    write_galaxy_zoo_submission,
)
from skestimators.datasets._galaxy_render import _render
from skestimators.datasets._galaxy_sim import _classes, _simulate
from skestimators.datasets._image_statistics import (
    galaxy_image_statistics,
    spiral_handedness,
)
from skestimators.galaxy_zoo import (
    GALAXY_ZOO_COLUMNS,
    GALAXY_ZOO_QUESTIONS,
    project_galaxy_zoo,
)
from skestimators.metrics import (
    galaxy_zoo_root_mean_squared_error,
    galaxy_zoo_root_mean_squared_error_per_column,
    neg_galaxy_zoo_root_mean_squared_error_scorer,
)
from skestimators.preprocessing import ImagePreprocessor

COLUMNS = list(GALAXY_ZOO_COLUMNS)


def tree_violation(y) -> float:
    """Largest deviation of a question's sum from its parent answer (or 1)."""
    y = np.asarray(y, dtype=np.float64)
    worst = 0.0
    for q in GALAXY_ZOO_QUESTIONS:
        parent = 1.0 if q.parent is None else y[:, q.parent]
        worst = max(worst, np.abs(y[:, q.start : q.stop].sum(1) - parent).max())
    return worst


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("galaxy_zoo")
    return write_galaxy_zoo_folder(path, 12, n_test=3, random_state=0)


@pytest.fixture(scope="module")
def simulated():
    return make_galaxy_zoo(500, return_classes=True, random_state=0)


@pytest.fixture
def copy(folder, tmp_path):
    """A writable copy of the Kaggle folder."""
    shutil.copytree(folder.images_dir.parent, tmp_path, dirs_exist_ok=True)
    return tmp_path


# --- simulator -----------------------------------------------------------------


def test_simulator_output(simulated):
    X, y, classes = simulated
    assert X.shape == (500, 3, 69, 69) and X.dtype == np.float32
    assert 0 <= X.min() and X.max() <= 1
    assert list(y.columns) == COLUMNS and len(y) == 500
    assert tree_violation(y) < 1e-6
    votes = y.to_numpy() * 40
    np.testing.assert_allclose(votes, np.round(votes), atol=1e-9)
    assert set(classes) == set(GALAXY_CLASSES)
    # smooth galaxies mostly voted smooth, spirals mostly voted features
    assert y["Class1.1"][classes == "elliptical"].mean() > 0.8
    spirals = np.char.endswith(classes.astype(str), "_spiral")
    assert y["Class1.2"][spirals].mean() > 0.6


def test_simulator_is_reproducible_across_sizes():
    X1, y1 = make_galaxy_zoo(20, size=24, random_state=3, n_volunteers=7)
    X2, y2 = make_galaxy_zoo(20, size=24, random_state=3, n_volunteers=7)
    X3, y3 = make_galaxy_zoo(20, size=40, random_state=3, n_volunteers=7)
    np.testing.assert_array_equal(X1, X2)
    pd.testing.assert_frame_equal(y1, y3)
    assert X3.shape == (20, 3, 40, 40)
    assert not make_galaxy_zoo(20, size=24, random_state=4)[1].equals(y1)
    _, labels = make_galaxy_classes(20, size=24, random_state=3)
    assert (labels == make_galaxy_zoo(20, return_classes=True, random_state=3)[2]).all()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_samples": 0}, ValueError, "n_samples must be >= 1"),
        ({"size": 32.0}, TypeError, "size must be an int"),
        ({"n_volunteers": 0}, ValueError, "n_volunteers"),
        ({"random_state": "seed"}, ValueError, "random_state"),
    ],
)
def test_simulator_rejects_bad_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_galaxy_zoo(**{"n_samples": 2, **kwargs})


def test_handedness_convention_on_face_on_spirals():
    morph, *_ = _simulate(16, 0, 40)
    morph.update(
        kind=np.ones(16, int), odd=np.zeros(16, int), qd=np.ones(16),
        arm_amp=np.full(16, 0.9), arms=np.full(16, 2), bar=np.zeros(16),
        bt=np.full(16, 0.05), h=np.full(16, 0.2), star_flux=np.zeros((16, 3)),
        handedness=np.tile([1, -1], 8),
    )  # fmt: skip
    X = _render(morph, 69, 1.0, np.random.default_rng(0))
    labels = _classes(morph)
    assert (labels[::2] == "clockwise_spiral").all()
    assert (labels[1::2] == "anticlockwise_spiral").all()
    np.testing.assert_array_equal(spiral_handedness(X), morph["handedness"])
    flipped = spiral_handedness(np.flip(X, axis=-1))
    np.testing.assert_array_equal(flipped, -morph["handedness"])
    rotated = spiral_handedness(np.rot90(X, 1, axes=(-2, -1)))
    np.testing.assert_array_equal(rotated, morph["handedness"])


def test_handedness_labels_match_the_images(simulated):
    X, _, classes = simulated
    spiral = np.isin(classes, ["clockwise_spiral", "anticlockwise_spiral"])
    truth = np.where(classes[spiral] == "clockwise_spiral", 1, -1)
    assert spiral.sum() > 60
    # A reversed convention would score about 1 - these accuracies. The
    # template finds the winding of 59 % of the real SDSS spirals of
    # ../shared/data/galaxy_gz1 (benchmarks/galaxy_realism.py) and of about
    # 65 % of the simulated ones: faint arms, blurred as in SDSS images.
    assert (spiral_handedness(X[spiral]) == truth).mean() > 0.6
    assert (spiral_handedness(np.flip(X[spiral], -1)) == -truth).mean() > 0.6


def test_image_statistics_measure_a_known_stamp():
    rng = np.random.default_rng(0)
    c = np.arange(69) - 34
    r2 = c[:, None] ** 2 + c[None, :] ** 2
    blob = 0.6 * np.exp(-0.5 * r2 / 3.0**2)
    X = np.full((2, 3, 69, 69), 0.02) + 0.01 * rng.standard_normal((2, 3, 69, 69))
    X += np.array([1.2, 1.0, 0.7])[:, None, None] * blob
    X[1, :, 8:11, 8:11] += 0.5  # a neighbour in a corner
    stats = galaxy_image_statistics(np.clip(X, 0, 1))
    np.testing.assert_allclose(stats[["sky_r", "sky_g", "sky_b"]], 0.02, atol=2e-3)
    np.testing.assert_allclose(stats[["noise_r", "noise_b"]], 0.01, rtol=0.15)
    assert stats["noise_corr"].between(0.85, 1.15).all()  # independent pixels
    # a Gaussian's half-light radius is 1.18 sigma
    np.testing.assert_allclose(stats["r_half"], 1.18 * 3.0, rtol=0.15)
    np.testing.assert_allclose(stats["colour_rg"], 1.2, rtol=0.05)
    np.testing.assert_allclose(stats["colour_bg"], 0.7, rtol=0.05)
    assert stats["n_neighbours"].tolist() == [0, 1]
    assert not stats["saturated"].any()


def test_simulator_statistics_are_close_to_sdss():
    # real SDSS stamps of ../shared/data/galaxy_gz1 loaded as load_image_folder
    # does (benchmarks/galaxy_realism.py): sky 0.020, noise 0.012, elliptical
    # R/G 1.22 and B/G 0.71, spiral 1.14 and 0.96, elliptical half-light
    # radius 9.0 px, 71 % of stamps with a neighbour, 1 % saturated centres
    X, classes = make_galaxy_classes(400, size=69, random_state=0)
    stats = galaxy_image_statistics(X)
    assert 0.012 < stats["sky_g"].median() < 0.03
    assert 0.008 < stats["noise_g"].median() < 0.018
    assert stats["saturated"].mean() < 0.08
    assert 0.5 < (stats["n_neighbours"] > 0).mean() < 0.9
    elliptical = stats[classes == "elliptical"]
    spiral = stats[np.char.endswith(classes.astype(str), "_spiral")]
    assert 7.5 < elliptical["r_half"].median() < 11
    assert 6.5 < spiral["r_half"].median() < 10
    # ellipticals red, spirals bluer
    assert 1.1 < elliptical["colour_rg"].median() < 1.35
    assert 0.6 < elliptical["colour_bg"].median() < 0.8
    assert spiral["colour_bg"].median() > elliptical["colour_bg"].median() + 0.15


# --- Kaggle folder, loader -----------------------------------------------------


def test_load_folder(folder):
    X, y, ids = load_galaxy_zoo(folder.images_dir, folder.solutions_csv)
    assert X.shape == (12, 3, 69, 69) and X.dtype == np.float32
    assert 0 <= X.min() and X.max() <= 1
    np.testing.assert_array_equal(ids, folder.ids)
    assert ids.dtype == np.int64 and (np.diff(ids) > 0).all()
    assert list(y.columns) == COLUMNS
    np.testing.assert_allclose(y.to_numpy(), folder.y.to_numpy())
    # the default crop shows the galaxies of make_galaxy_zoo
    X_sim, y_sim = make_galaxy_zoo(12, random_state=0)
    pd.testing.assert_frame_equal(y_sim, folder.y)
    assert np.corrcoef(X.ravel(), X_sim.ravel())[0, 1] > 0.8
    test = pd.read_csv(folder.benchmark_csv)
    assert list(test.columns) == ["GalaxyID", *COLUMNS] and len(test) == 3
    X_test, y_test, test_ids = load_galaxy_zoo(folder.test_images_dir)
    assert y_test is None and X_test.shape == (3, 3, 69, 69)
    np.testing.assert_array_equal(test_ids, test["GalaxyID"])


def test_load_options(folder):
    X, _, ids = load_galaxy_zoo(folder.images_dir, size=None, crop=100)
    assert X.shape == (12, 3, 100, 100)
    np.testing.assert_array_equal(ids, folder.ids)
    X, _, _ = load_galaxy_zoo(folder.images_dir, size=32, crop=None, n_jobs=2)
    assert X.shape == (12, 3, 32, 32)
    wanted = folder.ids[[5, 0, 7]]
    X, y, ids = load_galaxy_zoo(folder.images_dir, folder.solutions_csv, ids=wanted)
    np.testing.assert_array_equal(ids, wanted)
    np.testing.assert_allclose(y.to_numpy(), folder.y.to_numpy()[[5, 0, 7]])
    assert y.index.tolist() == [0, 1, 2]


def test_load_converts_non_rgb_images(copy, folder):
    gray, rgba = folder.ids[:2]
    Image.open(copy / "images_training_rev1" / f"{gray}.jpg").convert("L").save(
        copy / "images_training_rev1" / f"{gray}.jpg"
    )
    png = Image.open(copy / "images_training_rev1" / f"{rgba}.jpg").convert("RGBA")
    png.save(copy / "images_training_rev1" / f"{rgba}.jpg", format="PNG")
    X, _, _ = load_galaxy_zoo(copy / "images_training_rev1", ids=[gray, rgba])
    assert X.shape == (2, 3, 69, 69)
    np.testing.assert_array_equal(X[0, 0], X[0, 1])


def _edit_csv(copy, edit):
    path = copy / "training_solutions_rev1.csv"
    edit(pd.read_csv(path)).to_csv(path, index=False)
    return copy / "images_training_rev1", path


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda t: t.drop(columns="Class5.2"), r"missing \['Class5.2'\]"),
        (lambda t: t.rename(columns={"Class1.1": "Class1_1"}), "unexpected.*Class1_1"),
        (lambda t: t.drop(columns="GalaxyID"), "no GalaxyID column"),
        (lambda t: t.assign(**{"Class3.1": np.nan}), "missing or non-numeric"),
        (lambda t: pd.concat([t, t.iloc[:1]]), "duplicated GalaxyIDs"),
        (lambda t: t.assign(GalaxyID=t["GalaxyID"] + 0.5), "must hold integers"),
        (lambda t: t.assign(GalaxyID=t["GalaxyID"] + 1), "12 GalaxyIDs have no image"),
        (lambda t: t.assign(**{"Class1.1": 7.5}), "between 0 and 1; 12 rows"),
    ],
)
def test_load_rejects_bad_solutions(copy, edit, match):
    images, csv = _edit_csv(copy, edit)
    with pytest.raises(ValueError, match=match):
        load_galaxy_zoo(images, csv)


def test_load_errors(copy, folder, tmp_path_factory):
    images = copy / "images_training_rev1"
    csv = copy / "training_solutions_rev1.csv"
    with pytest.raises(FileNotFoundError, match="Image folder not found"):
        load_galaxy_zoo(copy / "nowhere", csv)
    with pytest.raises(FileNotFoundError, match="Solutions file not found"):
        load_galaxy_zoo(images, copy / "nothing.csv")
    with pytest.raises(ValueError, match="No <GalaxyID>.jpg images"):
        load_galaxy_zoo(tmp_path_factory.mktemp("empty"))
    with pytest.raises(ValueError, match="crop=500 is larger than image"):
        load_galaxy_zoo(images, csv, crop=500)
    with pytest.raises(ValueError, match=r"requested ids are not in .*\[1\]"):
        load_galaxy_zoo(images, csv, ids=[folder.ids[0], 1])
    with pytest.raises(ValueError, match="No galaxies to load"):
        load_galaxy_zoo(images, ids=[])
    with pytest.raises(ValueError, match="ids must be integer GalaxyIDs"):
        load_galaxy_zoo(images, csv, ids=[folder.ids[0] + 0.7])
    with pytest.raises(ValueError, match=r"ids must be unique; 1 are repeated"):
        load_galaxy_zoo(images, csv, ids=[folder.ids[0], folder.ids[1], folder.ids[0]])
    Image.new("RGB", (50, 40)).save(images / "1.jpg")
    with pytest.raises(ValueError, match="different sizes"):
        load_galaxy_zoo(images, crop=None, size=None)
    with pytest.raises(ValueError, match=r"crop=45 is larger than image .*1\.jpg"):
        load_galaxy_zoo(images, crop=45)
    (images / "1.jpg").unlink()
    (images / "notes.txt").write_text("ignored")
    missing = folder.ids[[2, 4]]
    for galaxy_id in missing:
        (images / f"{galaxy_id}.jpg").unlink()
    with pytest.raises(ValueError, match=rf"2 GalaxyIDs have no image.*{missing[0]}"):
        load_galaxy_zoo(images, csv)
    broken = images / f"{folder.ids[0]}.jpg"
    broken.write_bytes(broken.read_bytes()[:300])
    with pytest.raises(ValueError, match=rf"Cannot read image .*{broken.name}"):
        load_galaxy_zoo(images)
    broken.write_bytes(b"not a jpeg at all")
    with pytest.raises(ValueError, match=rf"Cannot read image .*{broken.name}"):
        load_galaxy_zoo(images)


# --- submission ----------------------------------------------------------------


def test_load_image_folder_reads_a_class_catalogue(tmp_path):
    rng = np.random.default_rng(0)
    ids = [587722981750014083, 587722981750865959, 587722982273384452]
    images = rng.integers(0, 256, (3, 30, 30, 3), dtype=np.uint8)
    for i, image in zip(ids, images):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    table = pd.DataFrame(
        {"objid": ids[::-1], "class": [2, 0, 1], "class_name": ["b", "a", "c"]}
    )
    table.to_csv(tmp_path / "classes.csv", index=False)
    X, y, got = load_image_folder(
        tmp_path, tmp_path / "classes.csv", crop=None, size=None
    )
    assert got.tolist() == ids[::-1] and y.tolist() == [2, 0, 1]  # the CSV's order
    np.testing.assert_allclose(X[0], images[2].transpose(2, 0, 1) / 255.0, atol=1e-6)
    X, y, _ = load_image_folder(
        tmp_path, tmp_path / "classes.csv", label_column="class_name", crop=20, size=10
    )
    assert X.shape == (3, 3, 10, 10) and X.dtype == np.float32
    assert y.tolist() == ["b", "a", "c"]
    with pytest.raises(ValueError, match="label_column='kind' is not a column"):
        load_image_folder(tmp_path, tmp_path / "classes.csv", label_column="kind")
    table.iloc[[0, 0]].to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(ValueError, match="present and unique"):
        load_image_folder(tmp_path, tmp_path / "dup.csv")
    pd.DataFrame({"objid": [ids[0], 7], "class": [0, 1]}).to_csv(
        tmp_path / "extra.csv", index=False
    )
    with pytest.raises(ValueError, match=r"1 ids .* have no image .*\['7'\]"):
        load_image_folder(tmp_path, tmp_path / "extra.csv")
    with pytest.raises(FileNotFoundError, match="Labels file"):
        load_image_folder(tmp_path, tmp_path / "none.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty.csv is not a readable CSV"):
        load_image_folder(tmp_path, tmp_path / "empty.csv")


@pytest.mark.parametrize("header", [" objid,class", "objid ,class", "objid, class"])
@pytest.mark.parametrize("id_column", [None, "objid"])
def test_load_image_folder_strips_the_header(tmp_path, header, id_column):
    # A space around the id column's name failed with pandas' "Usecols do not
    # match columns".
    for i in (11, 12):
        Image.new("RGB", (8, 8)).save(tmp_path / f"{i}.png")
    (tmp_path / "c.csv").write_text(f"{header}\n12,1\n11,0\n")
    _, y, ids = load_image_folder(
        tmp_path, tmp_path / "c.csv", id_column=id_column, crop=None, size=None
    )
    assert ids.tolist() == [12, 11] and y.tolist() == [1, 0]


def test_load_image_folder_strips_the_class_names(tmp_path):
    # "objid, class" CSVs (a space after each comma): the header and the ids
    # were stripped, the classes kept " clockwise_spiral", which then matched
    # no chirality pair of ImageClassifier.
    for i in (11, 12, 13):
        Image.new("RGB", (8, 8)).save(tmp_path / f"{i}.png")
    (tmp_path / "c.csv").write_text(
        "objid, class\n11, clockwise_spiral\n12, anticlockwise_spiral \n13,elliptical\n"
    )
    _, y, ids = load_image_folder(tmp_path, tmp_path / "c.csv", crop=None, size=None)
    assert ids.tolist() == [11, 12, 13]
    assert y.tolist() == ["clockwise_spiral", "anticlockwise_spiral", "elliptical"]
    (tmp_path / "blank.csv").write_text("objid, class\n11, a\n12, \n")
    with pytest.raises(ValueError, match="1 rows have no class"):
        load_image_folder(tmp_path, tmp_path / "blank.csv", crop=None, size=None)


def test_load_refuses_to_stretch_images_that_are_not_square(tmp_path):
    # crop=None with a size resized an 80x40 image to a square: a round
    # galaxy came back twice as wide as high.
    pixels = np.zeros((40, 80, 3), np.uint8)
    rows, cols = np.mgrid[:40, :80]
    pixels[(rows - 20) ** 2 + (cols - 40) ** 2 < 15**2] = 255
    Image.fromarray(pixels).save(tmp_path / "100008.png")
    (tmp_path / "c.csv").write_text("id,class\n100008,elliptical\n")
    message = r"100008\.png is 80x40 pixels: .*stretch .*crop=min\(width, height\) \(40"
    with pytest.raises(ValueError, match=message):
        load_image_folder(tmp_path, tmp_path / "c.csv", crop=None, size=20)
    X, _, _ = load_image_folder(tmp_path, tmp_path / "c.csv", crop=40, size=20)
    blob = np.nonzero(X[0, 0] > 0.5)
    assert X.shape == (1, 3, 20, 20) and np.ptp(blob[0]) == np.ptp(blob[1])  # round
    X, _, _ = load_image_folder(tmp_path, tmp_path / "c.csv", crop=None, size=None)
    assert X.shape == (1, 3, 40, 80)
    Image.fromarray(pixels).save(tmp_path / "100008.jpg")
    (tmp_path / "100008.png").unlink()
    with pytest.raises(ValueError, match=message.replace("png", "jpg")):
        load_galaxy_zoo(tmp_path, crop=None, size=20)


def test_images_read_in_part_are_named(tmp_path):
    """Transparent pixels and extra frames are not silently dropped."""
    Image.new("RGB", (20, 20), (200, 100, 50)).save(tmp_path / "a.png")
    Image.new("RGBA", (20, 20), (255, 255, 255, 255)).save(tmp_path / "b.png")
    see_through = Image.new("RGBA", (20, 20), (255, 0, 0, 255))
    see_through.putpixel((3, 3), (255, 0, 0, 0))
    see_through.save(tmp_path / "c.png")
    frames = [Image.new("RGB", (20, 20), (i, i, i)) for i in (10, 200)]
    frames[0].save(tmp_path / "d.tif", save_all=True, append_images=frames[1:])
    (tmp_path / "ok.csv").write_text("id,class\na,0\nb,1\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an opaque alpha channel says nothing
        load_image_folder(tmp_path, tmp_path / "ok.csv", crop=None, size=None)
    (tmp_path / "all.csv").write_text("id,class\na,0\nb,1\nc,0\nd,1\n")
    with pytest.warns(UserWarning) as record:
        X, _, _ = load_image_folder(
            tmp_path, tmp_path / "all.csv", crop=None, size=None
        )
    transparent, frames = sorted(str(w.message) for w in record)
    assert "1 image(s)" in frames and "several frames" in frames
    assert frames.endswith(": d.tif.") and transparent.endswith(": c.png.")
    assert "transparent pixels" in transparent
    np.testing.assert_allclose(X[3], 10 / 255, atol=1e-6)  # the first frame


def test_load_image_folder_ids_as_written_and_16_bit_images(tmp_path):
    # "007" names 007.png: ids are matched as written and returned as
    # strings when reading them as numbers would change them.
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (20, 20), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "007.png")
    # 16-bit greyscale (I;16): scaled by 65535, not clipped at 255
    deep = grey.astype(np.uint16) * 257
    Image.fromarray(deep).save(tmp_path / "012.png")
    assert Image.open(tmp_path / "012.png").mode == "I;16"
    (tmp_path / "c.csv").write_text("id,class\n007,0\n012,1\n")
    X, y, ids = load_image_folder(tmp_path, tmp_path / "c.csv", crop=None, size=None)
    assert ids.tolist() == ["007", "012"] and y.tolist() == [0, 1]
    np.testing.assert_allclose(X[0, 1], grey / 255.0, atol=1e-6)
    np.testing.assert_allclose(X[1], X[0], atol=1e-6)  # the same picture
    Image.fromarray(deep.astype(np.float32)).save(tmp_path / "013.tif")
    (tmp_path / "f.csv").write_text("id,class\n013,0\n")
    with pytest.raises(ValueError, match=r"013\.tif has 'F' pixels"):
        load_image_folder(tmp_path, tmp_path / "f.csv", crop=None, size=None)


@pytest.mark.parametrize("orientation", [2, 6])  # mirrored; turned 90 degrees
def test_load_applies_the_exif_orientation(tmp_path, orientation):
    # Pixels stored as the camera wrote them, with an EXIF tag saying how to
    # show them: a mirroring tag ignored would swap a spiral's handedness.
    pixels = np.zeros((8, 12, 3), np.uint8)
    pixels[:, :4] = 255  # the left third white
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(tmp_path / "100008.png", exif=exif.tobytes())
    shown = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "100008.png")))
    assert shown.shape != pixels.shape or not np.array_equal(shown, pixels)
    (tmp_path / "c.csv").write_text("id,class\n100008,0\n")
    X, _, _ = load_image_folder(tmp_path, tmp_path / "c.csv", crop=None, size=None)
    np.testing.assert_allclose(X[0], shown.transpose(2, 0, 1) / 255.0)
    Image.open(tmp_path / "100008.png").convert("RGB").save(
        tmp_path / "100008.jpg", exif=exif.tobytes(), quality=100
    )
    (tmp_path / "100008.png").unlink()
    shown = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "100008.jpg")))
    X, _, _ = load_galaxy_zoo(tmp_path, crop=None, size=None)
    np.testing.assert_allclose(X[0], shown.transpose(2, 0, 1) / 255.0)


def test_load_refuses_two_images_of_one_id(tmp_path):
    Image.new("RGB", (8, 8), (10, 10, 10)).save(tmp_path / "1.jpg")
    Image.new("RGB", (8, 8), (200, 200, 200)).save(tmp_path / "1.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "2.png")
    (tmp_path / "c.csv").write_text("id,class\n1,a\n")
    with pytest.raises(ValueError, match=r"id '1' names several .*1\.jpg and 1\.png"):
        load_image_folder(tmp_path, tmp_path / "c.csv", crop=None, size=None)
    (tmp_path / "c.csv").write_text("id,class\n2,a\n")  # the clash is not read
    assert load_image_folder(tmp_path, tmp_path / "c.csv", crop=None, size=None)[
        0
    ].shape == (1, 3, 8, 8)
    galaxies = tmp_path / "galaxies"
    galaxies.mkdir()
    Image.new("RGB", (8, 8), (10, 10, 10)).save(galaxies / "100008.jpg")
    Image.new("RGB", (8, 8), (200, 200, 200)).save(galaxies / "0100008.jpg")
    with pytest.raises(ValueError, match=r"0100008\.jpg and 100008\.jpg"):
        load_galaxy_zoo(galaxies, crop=None, size=None)
    with pytest.raises(ValueError, match="names several images"):
        load_galaxy_zoo(galaxies, crop=None, size=None, ids=[100008])


def test_load_image_folder_names_an_unreadable_file(tmp_path, monkeypatch):
    # A Latin-1 labels file raised pandas' bare UnicodeDecodeError, an image
    # over Pillow's size limit a DecompressionBombError: neither named the file.
    for i in (1, 2):
        Image.new("RGB", (20, 20)).save(tmp_path / f"{i}.png")
    (tmp_path / "c.csv").write_bytes("id,name\n1,caf\xe9\n2,x\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"c\.csv is not UTF-8 text"):
        load_image_folder(tmp_path, tmp_path / "c.csv", crop=None, size=8)
    (tmp_path / "c.csv").write_text("id,name\n1,a\n2,b\n")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 150)  # 20 x 20 > 2 * 150
    with pytest.raises(ValueError, match=r"Cannot read image .*1\.png: .*MAX_IMAGE"):
        load_image_folder(tmp_path, tmp_path / "c.csv", crop=None, size=8)


def test_submission_follows_a_shuffled_template(tmp_path):
    rng = np.random.default_rng(0)
    ids = np.array([100008, 100023, 100053, 100078])
    y_pred = rng.random((4, 37))
    order = rng.permutation(37)
    template = pd.DataFrame(0.0, index=range(4), columns=[COLUMNS[i] for i in order])
    template.insert(0, "GalaxyID", ids[[2, 0, 3, 1]])
    template.to_csv(tmp_path / "all_zeros_benchmark.csv", index=False)
    template_path = tmp_path / "all_zeros_benchmark.csv"
    path = write_galaxy_zoo_submission(
        y_pred, ids, tmp_path / "submission.csv", template=template_path
    )
    written = pd.read_csv(path)
    assert list(written.columns) == list(template.columns)
    np.testing.assert_array_equal(written["GalaxyID"], template["GalaxyID"])
    expected = pd.DataFrame(y_pred, columns=COLUMNS, index=ids)
    np.testing.assert_allclose(
        written.set_index("GalaxyID")[COLUMNS].to_numpy(),
        expected.loc[template["GalaxyID"], COLUMNS].to_numpy(),
        atol=1e-6,
    )
    # a DataFrame is matched by column name; no template: canonical order
    frame = pd.DataFrame(y_pred, columns=COLUMNS)[[COLUMNS[i] for i in order]]
    path = write_galaxy_zoo_submission(frame, ids, tmp_path / "plain.csv")
    plain = pd.read_csv(path)
    assert list(plain.columns) == ["GalaxyID", *COLUMNS]
    np.testing.assert_allclose(plain[COLUMNS].to_numpy(), y_pred, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "all_zeros_benchmark.csv", "plain.csv", "submission.csv"
    ]  # fmt: skip


def test_submission_errors(tmp_path):
    y, ids, out = np.zeros((2, 37)), [100008, 100023], tmp_path / "sub.csv"
    with pytest.raises(ValueError, match=r"shape \(n_galaxies, 37\)"):
        write_galaxy_zoo_submission(np.zeros((2, 36)), ids, out)
    with pytest.raises(ValueError, match="3 ids for 2 rows"):
        write_galaxy_zoo_submission(y, [1, 2, 3], out)
    with pytest.raises(ValueError, match="NaN"):
        write_galaxy_zoo_submission(np.full((2, 37), np.nan), ids, out)
    with pytest.raises(ValueError, match="duplicates"):
        write_galaxy_zoo_submission(y, [5, 5], out)
    with pytest.raises(ValueError, match=r"missing \['Class2.1'\]"):
        frame = pd.DataFrame(y, columns=COLUMNS).drop(columns="Class2.1")
        write_galaxy_zoo_submission(frame, ids, out)
    template = pd.DataFrame(columns=["GalaxyID", *COLUMNS[:-1]])
    template.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match=r"template .* missing \['Class11.6'\]"):
        write_galaxy_zoo_submission(y, ids, out, template=tmp_path / "bad.csv")
    template = pd.DataFrame(0.0, index=[0], columns=["GalaxyID", *COLUMNS])
    template["GalaxyID"] = 999999
    template.to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(ValueError, match="ids differ from the template"):
        write_galaxy_zoo_submission(y, ids, out, template=tmp_path / "other.csv")
    with pytest.raises(FileNotFoundError, match="template not found"):
        write_galaxy_zoo_submission(y, ids, out, template=tmp_path / "none.csv")
    # Template ids are checked as the solutions' are: a missing id became
    # -9223372036854775808, a repeated one a repeated row.
    template = pd.DataFrame(0.0, index=[0, 1, 2], columns=["GalaxyID", *COLUMNS])
    template["GalaxyID"] = [100008, np.nan, 100023]
    template.to_csv(tmp_path / "nan.csv", index=False)
    with pytest.raises(ValueError, match="nan.csv: GalaxyID must hold integers"):
        write_galaxy_zoo_submission(y, ids, out, template=tmp_path / "nan.csv")
    template["GalaxyID"] = [100008, 100023, 100008]
    template.to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(ValueError, match=r"dup.csv: duplicated GalaxyIDs.*100008"):
        write_galaxy_zoo_submission(y, ids, out, template=tmp_path / "dup.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty.csv is not a readable CSV"):
        write_galaxy_zoo_submission(y, ids, out, template=tmp_path / "empty.csv")
    with pytest.raises(FileNotFoundError, match=r"folder .*nowhere does not exist"):
        write_galaxy_zoo_submission(y, ids, tmp_path / "nowhere" / "sub.csv")
    assert not out.exists()


def test_submission_file_mode_follows_the_umask(tmp_path):
    # mkstemp made it 0600: unreadable by another user's upload job.
    old = os.umask(0o022)
    try:
        path = write_galaxy_zoo_submission(np.zeros((1, 37)), [1], tmp_path / "s.csv")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_submission_write_is_atomic(tmp_path, monkeypatch):
    out = tmp_path / "sub.csv"
    write_galaxy_zoo_submission(np.zeros((1, 37)), [100008], out)
    before = out.read_text()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail)
    with pytest.raises(OSError, match="disk full"):
        write_galaxy_zoo_submission(np.ones((1, 37)), [100008], out)
    assert out.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["sub.csv"]


# --- metric and projection ------------------------------------------------------


def test_rmse_by_hand():
    y_true = np.zeros((2, 37))
    y_pred = np.zeros((2, 37))
    y_pred[0, 0], y_pred[1, 36] = 0.6, 0.8
    expected = np.sqrt((0.6**2 + 0.8**2) / 74)
    assert galaxy_zoo_root_mean_squared_error(y_true, y_pred) == pytest.approx(expected)
    per_column = galaxy_zoo_root_mean_squared_error_per_column(y_true, y_pred)
    assert list(per_column.index) == COLUMNS
    assert per_column["Class1.1"] == pytest.approx(0.6 / np.sqrt(2))
    assert per_column["Class11.6"] == pytest.approx(0.8 / np.sqrt(2))
    assert np.sqrt((per_column**2).mean()) == pytest.approx(expected)
    weighted = galaxy_zoo_root_mean_squared_error(y_true, y_pred, sample_weight=[1, 0])
    assert weighted == pytest.approx(0.6 / np.sqrt(37))
    shuffled = pd.DataFrame(y_pred, columns=COLUMNS)[COLUMNS[::-1]]
    assert galaxy_zoo_root_mean_squared_error(
        pd.DataFrame(y_true, columns=COLUMNS), shuffled
    ) == (pytest.approx(expected))


@pytest.mark.parametrize(
    "y_pred, match",
    [
        (np.zeros((2, 36)), r"shape \(n_samples, 37\)"),
        (np.full((2, 37), np.nan), "NaN"),
        (np.zeros((3, 37)), "inconsistent numbers of samples"),
        (pd.DataFrame(np.zeros((2, 37))), "missing"),
    ],
)
def test_metric_errors(y_pred, match):
    with pytest.raises(ValueError, match=match):
        galaxy_zoo_root_mean_squared_error(np.zeros((2, 37)), y_pred)


@pytest.mark.parametrize("weights", [[1.0, np.nan], [np.inf, 1.0], [-np.inf, 1.0]])
@pytest.mark.parametrize(
    "metric",
    [galaxy_zoo_root_mean_squared_error, galaxy_zoo_root_mean_squared_error_per_column],
)
def test_metric_rejects_non_finite_sample_weight(metric, weights):
    with pytest.raises(ValueError, match="sample_weight must be 1-D and finite"):
        metric(np.zeros((2, 37)), np.ones((2, 37)), sample_weight=weights)


def test_scorer_in_cross_validation(simulated):
    X, y, _ = simulated
    features = X[:200].mean(axis=(2, 3))
    scores = cross_val_score(
        DummyRegressor(),
        features,
        y[:200],
        cv=2,
        scoring=neg_galaxy_zoo_root_mean_squared_error_scorer,
    )
    assert (scores < 0).all()
    mean_prediction = np.tile(y[100:200].mean().to_numpy(), (100, 1))
    assert -scores[0] == pytest.approx(
        galaxy_zoo_root_mean_squared_error(y[:100], mean_prediction)
    )


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, (5, 37), elements=st.floats(-2, 2)))
def test_projection_obeys_tree_and_is_idempotent(y):
    projected = project_galaxy_zoo(y)
    assert projected.min() >= 0 and tree_violation(projected) < 1e-9
    np.testing.assert_allclose(project_galaxy_zoo(projected), projected, atol=1e-12)


def test_projection_of_huge_outputs_obeys_the_tree():
    # The sums of outputs of 1e308 overflowed: every share became 0.
    projected = project_galaxy_zoo(np.full((2, 37), 1e308))
    assert tree_violation(projected) < 1e-12
    np.testing.assert_allclose(projected[:, :3], 1 / 3)


def test_projection_keeps_valid_votes_and_frames(simulated):
    y = simulated[1]
    np.testing.assert_allclose(
        project_galaxy_zoo(y.to_numpy()), y.to_numpy(), atol=1e-12
    )
    frame = y.iloc[:5][COLUMNS[::-1]].set_axis(list("abcde"))
    projected = project_galaxy_zoo(frame)
    assert list(projected.columns) == COLUMNS[::-1] and list(projected.index) == list(
        "abcde"
    )
    with pytest.raises(ValueError, match="NaN"):
        project_galaxy_zoo(np.full((1, 37), np.nan))


# --- ImagePreprocessor ---------------------------------------------------------


def test_preprocessor_layouts_agree(simulated):
    X = simulated[0][:20]
    first = ImagePreprocessor(crop=45, size=32).fit(X)
    last = ImagePreprocessor(crop=45, size=32).fit(X.transpose(0, 2, 3, 1))
    assert first.layout_ == "channels_first" and last.layout_ == "channels_last"
    out = first.transform(X)
    assert out.shape == (20, 3, 32, 32) and out.dtype == np.float32
    np.testing.assert_allclose(out, last.transform(X.transpose(0, 2, 3, 1)), atol=1e-6)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, atol=1e-3)
    explicit = ImagePreprocessor(layout="channels_last", normalize=None)
    tiny = np.random.default_rng(0).random((2, 3, 3, 3), dtype=np.float32)
    np.testing.assert_array_equal(
        explicit.fit_transform(tiny), tiny.transpose(0, 3, 1, 2)
    )


def test_preprocessor_uint8_crop_and_gray():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (3, 10, 12, 3), dtype=np.uint8)
    out = ImagePreprocessor(crop=6, normalize=None).fit_transform(X)
    expected = X.transpose(0, 3, 1, 2)[:, :, 2:8, 3:9] / 255
    np.testing.assert_allclose(out, expected, atol=1e-6)
    gray = ImagePreprocessor(10, size=4).fit(X[..., 0])  # non-square: a crop
    assert gray.image_shape_ == (1, 10, 12) and gray.transform(X[..., 0]).shape == (
        3,
        1,
        4,
        4,
    )
    constant = ImagePreprocessor().fit(np.ones((2, 1, 4, 4)))
    np.testing.assert_array_equal(constant.std_, [1.0])


@settings(max_examples=15, deadline=None)
@given(
    st.integers(1, 4),
    st.sampled_from([1, 3, 4]),
    st.integers(5, 20),
    st.integers(5, 20),
    st.booleans(),
    st.integers(1, 12),
)
def test_preprocessor_shapes(n, channels, height, width, last, size):
    shape = (n, height, width, channels) if last else (n, channels, height, width)
    X = np.random.default_rng(0).random(shape)
    layout = "channels_last" if last else "channels_first"
    crop = min(height, width)
    pre = ImagePreprocessor(crop, size=size, layout=layout, batch_size=2).fit(X)
    assert pre.transform(X).shape == (n, channels, size, size)


def test_preprocessor_validation():
    X = np.zeros((2, 3, 8, 8))
    with pytest.raises(NotFittedError):
        ImagePreprocessor().transform(X)
    with pytest.raises(ValueError, match="NaN"):
        ImagePreprocessor().fit(np.full((2, 3, 8, 8), np.nan))
    with pytest.raises(ValueError, match="expects images"):
        ImagePreprocessor().fit(np.zeros((2, 64)))
    with pytest.raises(ValueError, match="crop=9 is larger"):
        ImagePreprocessor(crop=9).fit(X)
    # Resizing non-square images to a square would stretch them.
    wide = np.zeros((2, 3, 8, 12))
    with pytest.raises(ValueError, match=r"size=4 needs square images, got 8x12"):
        ImagePreprocessor(size=4).fit(wide)
    assert ImagePreprocessor(8, size=4).fit_transform(wide).shape == (2, 3, 4, 4)
    assert ImagePreprocessor().fit_transform(wide).shape == (2, 3, 8, 12)
    unchanged = ImagePreprocessor().fit(wide).set_params(size=4)
    with pytest.raises(ValueError, match="needs square images"):
        unchanged.transform(wide)
    with pytest.raises(InvalidParameterError):
        ImagePreprocessor(layout="nchw").fit(X)
    pre = ImagePreprocessor().fit(X)
    with pytest.raises(ValueError, match="fitted on images of shape"):
        pre.transform(np.zeros((2, 3, 8, 9)))
    # scikit-learn's check came first: "X has 8 features, but ... 3 features".
    with pytest.raises(ValueError, match=r"\(8, 8, 3\): the same images in another"):
        pre.transform(np.zeros((2, 8, 8, 3)))
    with pytest.raises(ValueError, match="NaN"):
        pre.transform(np.full((2, 3, 8, 8), np.nan))
    copy = pickle.loads(pickle.dumps(pre))
    np.testing.assert_array_equal(copy.transform(X), pre.transform(X))
    assert clone(pre).get_params() == pre.get_params()
    assert not hasattr(clone(pre), "mean_")


# Answers that reach 0.5 in fewer galaxies than folds (some simulated ones).
RARE_ANSWERS = "ignore:The least populated label:UserWarning"


@pytest.mark.filterwarnings(RARE_ANSWERS)
def test_multilabel_stratified_kfold_keeps_every_answer_in_every_fold():
    from sklearn.model_selection import KFold, cross_val_score

    from skestimators.model_selection import MultilabelStratifiedKFold

    X, y = make_galaxy_zoo(600, size=8, random_state=0)
    answers = y.to_numpy() >= 0.5

    def worst_gap(cv):
        shares = np.array([answers[test].mean(0) for _, test in cv.split(X, y)])
        return np.abs(shares - answers.mean(0)).max()

    cv = MultilabelStratifiedKFold(5, random_state=0)
    folds = [test for _, test in cv.split(X, y)]
    assert sorted(np.concatenate(folds).tolist()) == list(range(600))
    assert max(map(len, folds)) - min(map(len, folds)) <= 2
    assert worst_gap(cv) < worst_gap(KFold(5, shuffle=True, random_state=0)) / 3
    assert [t.tolist() for _, t in cv.split(X, y)] == [f.tolist() for f in folds]
    # a scikit-learn splitter: cross_val_score takes it
    scores = cross_val_score(DummyRegressor(), X.reshape(600, -1), y, cv=cv)
    assert scores.shape == (5,)
    with pytest.raises(ValueError, match="stratifies on y"):
        next(cv.split(X, None))
    with pytest.raises(ValueError, match="n_splits must be an integer >= 2"):
        next(MultilabelStratifiedKFold(1).split(X, y))


def test_multilabel_stratified_kfold_without_shuffle_and_bad_labels():
    import warnings

    from skestimators.model_selection import MultilabelStratifiedKFold

    X, y = make_galaxy_zoo(200, size=8, random_state=0)
    # No shuffle: the same folds at every call, with no seed to set.
    cv = MultilabelStratifiedKFold(5, shuffle=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The least populated label")
        first = [test.tolist() for _, test in cv.split(X, y)]
        assert first == [test.tolist() for _, test in cv.split(X, y)]
    with pytest.raises(ValueError, match="random_state has no effect"):
        next(MultilabelStratifiedKFold(5, shuffle=False, random_state=0).split(X, y))
    # Class labels are not 0/1 labels or fractions.
    codes = np.arange(200) % 4
    with pytest.raises(ValueError, match=r"values from 0 to 3.*LabelBinarizer"):
        next(MultilabelStratifiedKFold(5).split(X, codes))
    with pytest.raises(ValueError, match="values from -0.5"):
        next(MultilabelStratifiedKFold(5).split(X, y - 0.5))
    # A label with fewer members than folds warns, as StratifiedKFold does.
    labels = np.zeros((200, 2), dtype=int)
    labels[:100, 0] = 1
    labels[:3, 1] = 1
    with pytest.warns(UserWarning, match=r"column 1\) has only 3 members") as record:
        next(MultilabelStratifiedKFold(5, random_state=0).split(X, labels))
    assert record[0].filename == __file__  # points at the caller
    labels[:, 1] = 0  # a label nobody has constrains nothing: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        next(MultilabelStratifiedKFold(5, random_state=0).split(X, labels))
    # Named by its column when y is a DataFrame.
    with pytest.warns(UserWarning, match=r"label \('Class\d+\.\d+'\) has only"):
        next(MultilabelStratifiedKFold(5, random_state=0).split(X, y))


def test_multilabel_stratified_kfold_keeps_groups_together():
    # groups were ignored: duplicates of one galaxy sat in training and test.
    from sklearn.model_selection import GroupKFold, cross_val_score

    from skestimators.model_selection import MultilabelStratifiedKFold

    X, y = make_galaxy_zoo(600, size=8, random_state=0)
    groups = np.random.RandomState(0).randint(0, 200, 600)  # ~3 cut-outs each
    answers = y.to_numpy() >= 0.5
    cv = MultilabelStratifiedKFold(5, random_state=0)
    folds = [test for _, test in cv.split(X, y, groups)]
    assert sorted(np.concatenate(folds).tolist()) == list(range(600))
    for train, test in cv.split(X, y, groups):
        assert not set(groups[train]) & set(groups[test])

    def worst_gap(splits):
        shares = np.array([answers[test].mean(0) for _, test in splits])
        return np.abs(shares - answers.mean(0)).max()

    plain = GroupKFold(5).split(X, y, groups)
    assert worst_gap(cv.split(X, y, groups)) < worst_gap(plain)
    scores = cross_val_score(
        DummyRegressor(), X.reshape(600, -1), y, cv=cv, groups=groups
    )
    assert scores.shape == (5,)
    with pytest.raises(ValueError, match="greater than the number of groups"):
        next(cv.split(X, y, np.arange(600) % 3))
    # Rows of coordinates as groups (a raw NumPy broadcasting error).
    rows = np.column_stack([groups, groups * 2.0])
    assert [t.tolist() for _, t in cv.split(X, y, rows)] == [
        t.tolist() for _, t in cv.split(X, y, groups)
    ]


@pytest.mark.filterwarnings("ignore:The least populated label")
def test_multilabel_stratified_kfold_takes_routed_groups():
    # Under metadata routing the splitter never asked for groups: they went
    # to the estimator alone, and cut-outs of one galaxy sat in training and
    # test of every fold without a word.
    import sklearn
    from sklearn.model_selection import cross_validate

    from skestimators.model_selection import MultilabelStratifiedKFold

    X, y = make_galaxy_zoo(300, size=8, random_state=0)
    groups = np.random.RandomState(0).randint(0, 100, 300)
    cv = MultilabelStratifiedKFold(3, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        result = cross_validate(
            DummyRegressor(), X.reshape(300, -1), y, cv=cv,
            params={"groups": groups}, return_indices=True,
        )  # fmt: skip
    indices = result["indices"]
    for train, test in zip(indices["train"], indices["test"], strict=True):
        assert not set(groups[train]) & set(groups[test])


def test_multilabel_stratified_kfold_counts_groups_and_checks_threshold():
    from skestimators.model_selection import MultilabelStratifiedKFold

    X = np.zeros((200, 1))
    labels = np.zeros((200, 2), dtype=int)
    labels[:100, 0] = 1
    labels[:10, 1] = 1  # ten cut-outs of one galaxy: one group
    groups = np.r_[np.zeros(10), np.arange(1, 191)]
    cv = MultilabelStratifiedKFold(5, random_state=0)
    with pytest.warns(UserWarning, match=r"column 1\) has only 1 groups"):
        next(cv.split(X, labels, groups))
    fractions = labels * 0.8 + 0.1  # vote fractions: thresholded
    for threshold in (50, -1, 0):
        with pytest.raises(ValueError, match="threshold must be a fraction"):
            next(MultilabelStratifiedKFold(5, threshold=threshold).split(X, fractions))
    # 0/1 labels need no threshold: any is accepted, as before.
    next(MultilabelStratifiedKFold(5, threshold=50).split(X, labels))
    # One column of text ids (a DataFrame column) as groups.
    names = np.array([f"g{g:.0f}" for g in groups], dtype=object)[:, None]
    assert [t.tolist() for _, t in cv.split(X, labels, names)]


@pytest.mark.parametrize("crop, size", [(None, None), (7, None), (7, 5), (None, 6)])
@pytest.mark.parametrize("value", [1, 0.1, 0.3, 1234.567, 200])
def test_preprocessor_constant_channel_stays_zero(crop, size, value):
    # Cropping and resizing in float32 leave a rounding spread on a constant
    # channel; standardising by it turned the channel into noise of about +-4.
    rng = np.random.default_rng(0)
    X = np.concatenate(
        [rng.random((6, 2, 12, 12)), np.full((6, 1, 12, 12), value)], axis=1
    )
    if value == 200:
        X = (X * [[[[255]], [[255]], [[1]]]]).astype(np.uint8)
    pre = ImagePreprocessor(crop, size=size).fit(X)
    assert pre.std_[2] == 1.0
    assert np.abs(pre.transform(X)[:, 2]).max() < 1e-3


def test_preprocessor_refuses_images_on_another_pixel_scale():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (4, 3, 8, 8), dtype=np.uint8)
    pre = ImagePreprocessor().fit(X)
    with pytest.raises(ValueError, match="fitted on uint8 images.*reach 2"):
        pre.transform(X.astype(np.float32))
    # Floats in [0, 1] are on the scale uint8 pixels are brought to.
    np.testing.assert_allclose(
        pre.transform(X / 255.0), pre.transform(X), rtol=1e-5, atol=1e-5
    )
    pre.transform(X / 255.0 * 1.01)  # a resampling overshoot is not 0-255
    raw = ImagePreprocessor().fit(X.astype(np.float64))
    with pytest.raises(ValueError, match="fitted on float64 images that reach 2"):
        raw.transform(X)
    unit = ImagePreprocessor().fit(X / 255.0)
    np.testing.assert_allclose(
        unit.transform(X), unit.transform(X / 255.0), rtol=1e-5, atol=1e-5
    )
