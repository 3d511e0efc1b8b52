"""Loading the CNES exoplanet files and simulating spectra like them."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline

from skestimators import MultiInput
from skestimators.datasets import load_exoplanet, make_exoplanet
from skestimators.preprocessing import ChannelSelector, SpectrumNormalizer

AUX = [
    "star_mass_kg",
    "star_radius_m",
    "star_temperature",
    "planet_mass_kg",
    "semi_major_axis_m",
]


@pytest.fixture(scope="module")
def real():
    return load_exoplanet()


def test_bundled_data(real):
    X, y = real
    assert isinstance(X, MultiInput)
    assert X.shapes == {"spectra": (2400, 52, 3), "aux": (2400, 5)}
    spectra = X["spectra"]
    assert spectra.dtype == np.float64
    assert list(X["aux"].columns) == AUX
    assert list(y.columns) == ["water", "cloud"]
    assert y.index.name == "id" and y.index.is_unique
    assert (y.dtypes == np.int64).all()
    assert np.allclose(y.mean(), 0.5, atol=0.02)
    wavelength = spectra[:, :, 0]
    assert np.allclose(wavelength, wavelength[0])
    assert wavelength[0, 0] == pytest.approx(7.28, abs=0.01)
    assert wavelength[0, -1] == pytest.approx(0.55)
    assert np.all(np.diff(wavelength[0]) < 0)
    assert np.all(spectra[:, :, 1:] > 0)


# -- error paths, on a small copy of the real files written to tmp_path ----------
@pytest.fixture
def folder(tmp_path, real):
    X, y = real
    np.save(tmp_path / "spectra.npy", X["spectra"][:6])
    X["aux"][:6].to_csv(tmp_path / "auxiliary.csv", index=False)
    y[:6].reset_index().to_csv(tmp_path / "targets.csv", index=False)
    return tmp_path


def _table(folder, name):
    return pd.read_csv(folder / name)


def test_small_copy_round_trips(folder, real):
    X, y = load_exoplanet(folder)
    np.testing.assert_array_equal(X["spectra"], real[0]["spectra"][:6])
    pd.testing.assert_frame_equal(y, real[1][:6])
    assert X["aux"].index.equals(y.index)


def test_targets_are_optional(folder):
    (folder / "targets.csv").unlink()
    X, y = load_exoplanet(str(folder))
    assert y is None and len(X) == 6


def test_targets_without_id(folder):
    _table(folder, "targets.csv").drop(columns="id").to_csv(
        folder / "targets.csv", index=False
    )
    _, y = load_exoplanet(folder)
    assert list(y.index) == list(range(6))


def test_targets_of_ids_only(folder, real):
    # Planets to score (as skestimators score reads them) were refused:
    # "missing ['water', 'cloud']", so Python could not load the planets the
    # command line scored, with their ids.
    _table(folder, "targets.csv")[["id"]].to_csv(folder / "targets.csv", index=False)
    X, y = load_exoplanet(folder)
    assert y is None
    assert X["aux"].index.name == "id"
    assert X["aux"].index.tolist() == real[1].index[:6].tolist()
    ids = _table(folder, "targets.csv")
    ids.loc[2, "id"] = ids.loc[1, "id"]
    ids.to_csv(folder / "targets.csv", index=False)
    with pytest.raises(ValueError, match="'id' must hold unique integers"):
        load_exoplanet(folder)


def test_auxiliary_ids_as_pandas_writes_them(folder, real):
    # X["aux"].to_csv() writes the "id" index as a column, which skestimators
    # score reads and load_exoplanet refused ("unexpected ['id']").
    real[0]["aux"][:6].to_csv(folder / "auxiliary.csv")
    X, y = load_exoplanet(folder)
    assert X["aux"].index.equals(y.index) and list(X["aux"].columns) == AUX
    (folder / "targets.csv").unlink()  # the planets' ids, without targets
    X, _ = load_exoplanet(folder)
    assert X["aux"].index.tolist() == real[1].index[:6].tolist()
    aux = _table(folder, "auxiliary.csv")
    real[1][:6].reset_index().to_csv(folder / "targets.csv", index=False)
    aux.assign(id=aux["id"][::-1].to_numpy()).to_csv(
        folder / "auxiliary.csv", index=False
    )
    with pytest.raises(ValueError, match="'id' columns of auxiliary.csv and"):
        load_exoplanet(folder)


def test_aux_columns_are_put_in_order(folder):
    aux = _table(folder, "auxiliary.csv")
    aux[AUX[::-1]].to_csv(folder / "auxiliary.csv", index=False)
    X, _ = load_exoplanet(folder)
    assert list(X["aux"].columns) == AUX


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_exoplanet(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_exoplanet(tmp_path / "file")


@pytest.mark.parametrize("name", ["spectra.npy", "auxiliary.csv"])
def test_missing_file(folder, name):
    (folder / name).unlink()
    with pytest.raises(FileNotFoundError, match=name):
        load_exoplanet(folder)


def _save(array):
    return lambda folder: np.save(folder / "spectra.npy", array)


def _npz(folder):
    with open(folder / "spectra.npy", "wb") as f:
        np.savez(f, a=np.zeros((6, 52, 3)))


def _truncate(folder):
    data = (folder / "spectra.npy").read_bytes()
    (folder / "spectra.npy").write_bytes(data[:500])


def _spectra(change):
    def corrupt(folder):
        np.save(folder / "spectra.npy", change(np.load(folder / "spectra.npy")))

    return corrupt


def _reverse_grid_of(row):
    def change(spectra):
        spectra[row, :, 0] = spectra[row, ::-1, 0]
        return spectra

    return change


def _put(row, column, channel, value):
    def change(spectra):
        spectra[row, column, channel] = value
        return spectra

    return change


def _with_nan(folder):
    spectra = np.load(folder / "spectra.npy")
    spectra[2, 5, 1] = np.nan
    np.save(folder / "spectra.npy", spectra)


@pytest.mark.parametrize(
    "corrupt, match",
    [
        (lambda f: (f / "spectra.npy").write_text("hello"), "not a valid .npy"),
        (lambda f: (f / "spectra.npy").write_bytes(b""), "not a valid .npy"),
        (_save(np.array([{"a": 1}] * 6, dtype=object)), "not a valid .npy"),
        (_npz, r"\.npz archive"),
        (_truncate, "not a valid .npy"),
        # Read as a zip (.npz) archive: zipfile.BadZipFile escaped.
        (lambda f: (f / "spectra.npy").write_bytes(b"PK\x03\x04bad"), "not a valid"),
        (_save(np.zeros((6, 52))), r"shape \(n_planets, n_wavelengths, 3\)"),
        (_save(np.zeros((6, 52, 2))), r"got shape \(6, 52, 2\)"),
        (_save(np.zeros((6, 52, 3, 1))), r"got shape \(6, 52, 3, 1\)"),
        (_save(np.zeros((6, 52, 3), dtype=complex)), "real numbers"),
        (_save(np.array([["a"] * 3] * 52 * 6).reshape(6, 52, 3)), "real numbers"),
        (_with_nan, r"1 NaN or infinite values \(first at index \(2, 5, 1\)\)"),
        (_spectra(lambda s: s[:5]), "disagree on the number of planets"),
        (_spectra(lambda s: s[..., [1, 0, 2]]), r"planet 0 .*channels in the order"),
        (_spectra(_reverse_grid_of(3)), r"planet 3 run the other way"),
        (_spectra(_put(0, 4, 0, 0.0)), r"planet 0 has wavelengths .* not positive"),
        (_spectra(_put(2, 5, 2, -1e-4)), r"planet 2 has uncertainties .* not positive"),
    ],
)
def test_bad_spectra(folder, corrupt, match):
    corrupt(folder)
    with pytest.raises(ValueError, match=match):
        load_exoplanet(folder)


def _edit(name, change):
    def corrupt(folder):
        change(_table(folder, name)).to_csv(folder / name, index=False)

    return corrupt


def _set(row, column, value):
    def change(table):
        table = table.astype({column: object if isinstance(value, str) else float})
        table.loc[row, column] = value
        return table

    return change


def _latin1(name):
    def corrupt(folder):
        text = (folder / name).read_text()
        (folder / name).write_bytes((text + "# caf\xe9\n").encode("latin-1"))

    return corrupt


@pytest.mark.parametrize(
    "corrupt, match",
    [
        (_edit("auxiliary.csv", lambda t: t.drop(columns="planet_mass_kg")), "missing"),
        (
            _edit("auxiliary.csv", lambda t: t.assign(extra=1.0)),
            r"unexpected \['extra'",
        ),
        (_edit("auxiliary.csv", lambda t: t.assign(id=1)), "'id' must hold unique"),
        (_edit("auxiliary.csv", lambda t: t.iloc[:-1]), "auxiliary.csv': 5"),
        (
            _edit("auxiliary.csv", _set(2, "star_temperature", "hot")),
            r"non-numeric columns \['star_temperature'\]",
        ),
        (
            _edit("auxiliary.csv", _set(1, "star_mass_kg", np.inf)),
            r"NaN or infinite values in columns \['star_mass_kg'\]",
        ),
        (
            _edit("targets.csv", lambda t: t.drop(columns="cloud")),
            r"missing \['cloud'\]",
        ),
        (_edit("targets.csv", lambda t: t.assign(co2=0)), r"unexpected \['co2'\]"),
        (_edit("targets.csv", lambda t: t.iloc[:-1]), "'targets.csv': 5"),
        (
            _edit("targets.csv", _set(0, "water", np.nan)),
            r"NaN or infinite values in columns \['water'\]",
        ),
        (_edit("targets.csv", _set(0, "water", 2)), "only 0 and 1"),
        (
            _edit("auxiliary.csv", _set(3, "planet_mass_kg", -5e24)),
            r"\['planet_mass_kg'\] must be positive",
        ),
        (_edit("targets.csv", _set(1, "id", 1)), "unique integers"),
        (_edit("targets.csv", _set(1, "id", 1.5)), "unique integers"),
        (lambda f: (f / "auxiliary.csv").write_text(""), "not a readable CSV"),
        # A header only: "has non-numeric columns", as its columns are empty.
        (
            _edit("auxiliary.csv", lambda t: t.iloc[:0]),
            "auxiliary.csv has no rows",
        ),
        # Latin-1 text: a bare UnicodeDecodeError, naming no file.
        (_latin1("auxiliary.csv"), r"auxiliary\.csv is not UTF-8 text"),
        (_latin1("targets.csv"), r"targets\.csv is not UTF-8 text"),
    ],
)
def test_bad_tables(folder, corrupt, match):
    corrupt(folder)
    with pytest.raises(ValueError, match=match):
        load_exoplanet(folder)


def test_ids_out_of_order_warn_that_rows_are_paired_by_position(folder):
    targets = _table(folder, "targets.csv")
    targets.iloc[::-1].to_csv(folder / "targets.csv", index=False)
    with pytest.warns(UserWarning, match="not in increasing order.*same order"):
        load_exoplanet(folder)


@pytest.mark.parametrize("name", ["spectra.npy", "auxiliary.csv", "targets.csv"])
def test_a_folder_in_place_of_a_file(folder, name):
    # It was said not to exist.
    (folder / name).unlink()
    (folder / name).mkdir()
    with pytest.raises(ValueError, match=rf"{name} is a folder, not a"):
        load_exoplanet(folder)


# -- simulator ------------------------------------------------------------------
def test_make_exoplanet_structure():
    X, y = make_exoplanet(200, n_wavelengths=30, random_state=0)
    assert X.shapes == {"spectra": (200, 30, 3), "aux": (200, 5)}
    assert list(X["aux"].columns) == AUX and list(y.columns) == ["water", "cloud"]
    assert (y.dtypes == np.int64).all() and y.index.name == "id"
    wavelength = X["spectra"][:, :, 0]
    assert wavelength[0, 0] == pytest.approx(7.28) and wavelength[0, -1] == 0.55
    assert np.all(np.diff(wavelength, axis=1) < 0)
    assert np.all(X["spectra"][:, :, 1:] > 0)
    low = [2.7e29, 1.25e8, 2960, 5e24, 3e9]
    high = [2.51e30, 1.0e9, 6169, 1e28, 4.4e10]
    assert np.all((X["aux"] >= low) & (X["aux"] <= high))
    assert np.allclose(y.mean(), 0.5, atol=0.1)


def test_make_exoplanet_is_deterministic():
    X1, y1 = make_exoplanet(50, random_state=3)
    X2, y2 = make_exoplanet(50, random_state=np.random.RandomState(3))
    X3, _ = make_exoplanet(50, random_state=4)
    assert X1 == X2 and y1.equals(y2)
    assert not np.allclose(X1["spectra"], X3["spectra"])


def test_noise_follows_the_uncertainty():
    clean, _ = make_exoplanet(400, noise=0.0, random_state=0)
    noisy, _ = make_exoplanet(400, noise=1.0, random_state=0)
    residual = noisy["spectra"][:, :, 1] - clean["spectra"][:, :, 1]
    z = residual / clean["spectra"][:, :, 2]
    assert z.std() == pytest.approx(1.0, abs=0.05)
    np.testing.assert_array_equal(clean["spectra"][:, :, 2], noisy["spectra"][:, :, 2])


@pytest.mark.parametrize(
    "params", [{"n_samples": 0}, {"n_wavelengths": 3}, {"noise": -1.0}]
)
def test_make_exoplanet_rejects_bad_parameters(params):
    with pytest.raises(ValueError, match=next(iter(params))):
        make_exoplanet(**params)


def test_water_is_learnable_from_simulated_spectra():
    X, y = make_exoplanet(600, random_state=0)
    model = make_pipeline(
        SpectrumNormalizer(channel=1),
        ChannelSelector(channels=1),
        LogisticRegression(max_iter=1000),
    )
    scores = cross_val_score(model, X["spectra"], y["water"], cv=3)
    assert scores.mean() > 0.8


def _exoplanet_benchmark():
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "exoplanet.py"
    spec = importlib.util.spec_from_file_location("exoplanet_benchmark", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_noise_twins_of_the_error_diagnostic():
    # benchmarks/exoplanet.py --errors: a planet has a noise twin when a
    # planet of its system with the other water label has a spectrum equal
    # to its own within the noise (whatever their depth levels).
    module = _exoplanet_benchmark()
    rng = np.random.default_rng(0)
    wavelength = np.linspace(7.3, 0.55, 52)
    shape = 1e-3 * np.sin(wavelength)
    truths = [shape, shape, 5 * shape, shape, shape]  # planet 2 stands out
    levels = [1.0, 1.1, 1.0, 1.0, 1.0]
    spectra = np.zeros((5, 52, 3))
    for i, (truth, level) in enumerate(zip(truths, levels)):
        spectra[i, :, 0] = wavelength
        # below the stated uncertainty: equal truths always look consistent
        spectra[i, :, 1] = level + truth + rng.normal(0, 3e-5, 52)
        spectra[i, :, 2] = 1e-4
    water = np.array([0, 1, 1, 0, 1])
    systems = np.array([0, 0, 0, 0, 1])  # planet 4 has no sibling
    twins = module.noise_twins(spectra, water, systems)
    np.testing.assert_array_equal(twins, [True, True, False, True, False])


def test_learning_curve_of_the_error_diagnostic():
    # benchmarks/exoplanet.py --learning-curve: the same test folds, nested
    # stratified subsamples of each training fold; the full fraction is plain
    # out-of-fold prediction.
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.multioutput import MultiOutputClassifier
    from sklearn.preprocessing import StandardScaler

    from skestimators.recipes import exoplanet_features

    module = _exoplanet_benchmark()
    X, y = make_exoplanet(120, random_state=0)

    def model():
        return make_pipeline(
            exoplanet_features(),
            StandardScaler(),
            MultiOutputClassifier(LogisticRegression(C=0.1, max_iter=2000)),
        )

    folds = list(KFold(3, shuffle=True, random_state=0).split(np.zeros(len(y))))
    table = module.learning_curve(model, X, y, folds, fractions=(0.5, 1.0))
    half, full = table["training planets"]
    assert full == 80 and abs(half - 40) <= 2  # rounded within each stratum
    wrong = cross_val_predict(model(), X, y, cv=folds) != y.to_numpy()
    last = table.iloc[-1]
    assert last["water errors"] == wrong[:, 0].sum()
    assert last["cloud errors"] == wrong[:, 1].sum()
    assert last["water errors %"] == pytest.approx(100 * wrong[:, 0].mean())


def test_the_smallest_grid_works_with_the_recipes():
    # make_exoplanet accepted 8 to 11 wavelengths, on which the physics
    # features of every recipe refused the spectra (a band without a bin).
    from sklearn.utils._param_validation import InvalidParameterError

    from skestimators.recipes import exoplanet_features

    X, _ = make_exoplanet(10, n_wavelengths=12, random_state=0)
    assert exoplanet_features().fit_transform(X).shape[0] == 10
    with pytest.raises(InvalidParameterError, match="n_wavelengths"):
        make_exoplanet(10, n_wavelengths=11)
