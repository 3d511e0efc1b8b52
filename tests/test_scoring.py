"""Streaming batch scoring: readers, invalid rows, resume, atomic output, Dask."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skestimators
from skestimators import MultiInput, NetClassifier, NetRegressor
from skestimators._io import ModelFileError, output_lock, sidecar_path
from skestimators.scoring import (
    InvalidRowsWarning,
    OutputLockedError,
    ResumeConflictError,
    ScoringInputError,
    score,
)
from skestimators.scoring import _score as score_module

from .conftest import FAST


@pytest.fixture(scope="module")
def spectra_model(tmp_path_factory):
    """A regressor on (n, 6, 3) spectra, saved, with its data as .npy."""
    folder = tmp_path_factory.mktemp("spectra")
    rng = np.random.RandomState(0)
    X = rng.normal(size=(203, 6, 3)).astype(np.float32)
    y = np.column_stack([X[:, :, 0].mean(1), X[:, :, 1].std(1)])
    y = pd.DataFrame(y, columns=["level", "spread"])
    model = NetRegressor(**FAST).fit(X, y)
    path = skestimators.save(model, folder / "reg.joblib", training_data=(X, y))
    np.save(folder / "X.npy", X)
    return path, folder / "X.npy", X, model


@pytest.fixture(scope="module")
def table_model(tmp_path_factory):
    """A classifier pipeline on a named-column table."""
    folder = tmp_path_factory.mktemp("table")
    rng = np.random.RandomState(1)
    X = pd.DataFrame(rng.normal(size=(150, 3)), columns=["a", "b", "c"])
    y = np.where(X["a"] > 0, "yes", "no")
    model = make_pipeline(StandardScaler(), NetClassifier(**FAST)).fit(X, y)
    path = skestimators.save(model, folder / "clf.joblib")
    return path, X, model


def run(model, inputs, output, **kwargs):
    return score(model, inputs, output, progress=False, **kwargs)


def run_invalid(model, inputs, output, **kwargs):
    """``run`` on an input with rows that cannot be scored."""
    with pytest.warns(InvalidRowsWarning, match="could not be scored") as record:
        result = run(model, inputs, output, **kwargs)
    # Attributed to the caller's line, not to scikit-learn's parameter checks.
    assert {w.filename for w in record} == {__file__}
    return result


def test_no_input_is_named(tmp_path, spectra_model):
    # "The inputs mix formats: []."
    with pytest.raises(ScoringInputError, match="No input given"):
        run(spectra_model[0], [], tmp_path / "o.parquet")


def test_npy_to_parquet_matches_predict(tmp_path, spectra_model):
    model_path, npy, X, model = spectra_model
    result = run(model_path, [npy], tmp_path / "out.parquet", chunk_rows=50)
    assert (result.n_rows, result.n_chunks, result.n_invalid) == (203, 5, 0)
    out = pd.read_parquet(result.output)
    assert list(out.columns) == ["id", "level", "spread"]
    np.testing.assert_array_equal(out["id"], np.arange(203))
    np.testing.assert_allclose(
        out[["level", "spread"]], model.predict(X), rtol=1e-5, atol=1e-6
    )
    assert not (tmp_path / "out.parquet.parts").exists()
    assert not (tmp_path / "out.parquet.invalid.csv").exists()


def test_parts_and_output_reach_the_disk_and_leftovers_go(tmp_path, spectra_model):
    # Parts were renamed without fsync while the manifest line saying they
    # were done was fsynced (a power cut could leave an empty part marked
    # done), and a killed run's temporary output stayed for good.
    import subprocess
    import sys

    from skestimators._io import temporary_name

    model_path, npy, _, _ = spectra_model
    output = tmp_path / "out.parquet"
    pid = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    mine = temporary_name(output)
    killed = mine.with_name(mine.name.replace(f".{os.getpid()}.", f".{pid}."))
    killed.write_bytes(b"half an output")
    synced = []
    real_fsync = os.fsync

    def fsync(fd):  # files told apart by inode, which a rename keeps
        synced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    written = {}
    real_write_table = pq.write_table

    def write_table(table, where, **kwargs):
        real_write_table(table, where, **kwargs)
        if ".part-" in str(where):
            written[str(where)] = os.stat(where).st_ino

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "fsync", fsync)
        patch.setattr(pq, "write_table", write_table)
        run(model_path, [npy], output, chunk_rows=100)
    assert len(written) == 3 and set(written.values()) <= set(synced)
    assert os.stat(output).st_ino in synced
    assert not killed.exists()


@pytest.mark.parametrize("fmt", ["csv", "npy"])
def test_output_formats(tmp_path, spectra_model, fmt):
    model_path, npy, X, model = spectra_model
    out = run(model_path, [npy], tmp_path / f"out.{fmt}", chunk_rows=64).output
    if fmt == "csv":
        values = pd.read_csv(out)[["level", "spread"]].to_numpy()
    else:
        values = np.load(out)
        assert not (tmp_path / "out.ids.npy").exists()  # ids are the row numbers
    np.testing.assert_allclose(values, model.predict(X), rtol=1e-5, atol=1e-6)


def test_several_npy_files_are_one_stream(tmp_path, spectra_model):
    model_path, _, X, model = spectra_model
    np.save(tmp_path / "a.npy", X[:100])
    np.save(tmp_path / "b.npy", X[100:])
    out = run(
        model_path,
        [tmp_path / "a.npy", tmp_path / "b.npy"],
        tmp_path / "o.parquet",
        chunk_rows=64,
    )
    frame = pd.read_parquet(out.output)
    np.testing.assert_array_equal(frame["id"], np.arange(203))
    np.testing.assert_allclose(
        frame[["level", "spread"]], model.predict(X), rtol=1e-5, atol=1e-6
    )


def test_nan_rows_are_listed_and_others_scored(tmp_path, spectra_model):
    model_path, _, X, model = spectra_model
    bad = X.copy()
    bad[[3, 150], 2, 1] = np.nan
    bad[77, 0, 0] = np.inf
    np.save(tmp_path / "bad.npy", bad)
    result = run_invalid(
        model_path, [tmp_path / "bad.npy"], tmp_path / "o.parquet", chunk_rows=64
    )
    assert result.n_invalid == 3 and result.n_rows == 203
    assert [r["id"] for r in result.invalid_preview] == [3, 77, 150]
    listed = pd.read_csv(result.invalid_path)
    assert listed["id"].tolist() == [3, 77, 150]
    assert set(listed["reason"]) == {"NaN or infinite value"}
    frame = pd.read_parquet(result.output)
    assert frame.loc[[3, 77, 150], "level"].isna().all()
    keep = np.setdiff1d(np.arange(203), [3, 77, 150])
    np.testing.assert_allclose(
        frame.loc[keep, ["level", "spread"]], model.predict(X[keep]), rtol=1e-5
    )


def test_chunk_with_only_invalid_rows(tmp_path, spectra_model):
    model_path, _, X, model = spectra_model
    bad = X[:30].copy()
    bad[:10] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    result = run_invalid(
        model_path, [tmp_path / "bad.npy"], tmp_path / "o.parquet", chunk_rows=10
    )
    frame = pd.read_parquet(result.output)
    assert list(frame.columns) == ["id", "level", "spread"]
    assert frame["level"].isna().sum() == 10 and result.n_invalid == 10


def test_wrong_shape_is_refused_before_scoring(tmp_path, spectra_model):
    model_path, _, X, _ = spectra_model
    np.save(tmp_path / "wide.npy", np.zeros((5, 7, 3), np.float32))
    with pytest.raises(ScoringInputError, match=r"shape \(7, 3\).*expects \(6, 3\)"):
        run(model_path, [tmp_path / "wide.npy"], tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()


def test_unreadable_and_unknown_inputs(tmp_path, spectra_model):
    model_path = spectra_model[0]
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(ScoringInputError, match="not a readable .npy"):
        run(model_path, [tmp_path / "junk.npy"], tmp_path / "o.parquet")
    # Dates were read as their integer counts and scored without a word.
    dates = np.full((5, 6, 3), np.datetime64("2020-01-01"), "datetime64[s]")
    np.save(tmp_path / "dates.npy", dates)
    with pytest.raises(ScoringInputError, match=r"numeric array .* datetime64\[s\]"):
        run(model_path, [tmp_path / "dates.npy"], tmp_path / "o.parquet")
    (tmp_path / "x.txt").write_text("1")
    with pytest.raises(ScoringInputError, match="Cannot tell the format"):
        run(model_path, [tmp_path / "x.txt"], tmp_path / "o.parquet")
    with pytest.raises(ScoringInputError, match="does not exist"):
        run(model_path, [tmp_path / "missing.npy"], tmp_path / "o.parquet")


def test_csv_with_id_column_and_class_names(tmp_path, table_model):
    model_path, X, model = table_model
    frame = X[["c", "b", "a"]].assign(key=[f"r{i}" for i in range(len(X))])
    frame.loc[5, "b"] = np.nan
    frame.to_csv(tmp_path / "in.csv", index=False)
    result = run_invalid(
        model_path,
        [tmp_path / "in.csv"],
        tmp_path / "o.csv",
        chunk_rows=40,
        id_column="key",
    )
    out = pd.read_csv(result.output)
    assert list(out.columns) == ["key", "proba_no", "proba_yes"]
    assert out["key"].tolist() == frame["key"].tolist()
    keep = out.index != 5
    np.testing.assert_allclose(
        out.loc[keep, ["proba_no", "proba_yes"]],
        model.predict_proba(X[keep]),
        rtol=1e-6,
    )
    assert pd.read_csv(result.invalid_path)["key"].tolist() == ["r5"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_table_id_column_is_detected(tmp_path, table_model, fmt):
    """A column named ``id`` holds the ids (not a feature); else row positions."""
    model_path, X, model = table_model
    ids = np.random.RandomState(0).permutation(len(X)) + 1000
    frame = X.assign(id=ids).iloc[::-1]  # the ids are not the row positions
    source = tmp_path / f"in.{fmt}"
    if fmt == "csv":
        frame.to_csv(source, index=False)
    else:
        frame.to_parquet(source, index=False)
    result = run(model_path, [source], tmp_path / "o.parquet", chunk_rows=40)
    out = pd.read_parquet(result.output)
    assert result.id_source == "column 'id'"
    assert pq.read_schema(result.output).metadata[b"id_source"] == b"column 'id'"
    assert out["id"].tolist() == frame["id"].tolist()
    targets = pd.DataFrame({"id": ids, "a": X["a"]})  # joined back on the ids
    joined = targets.merge(out, on="id", validate="one_to_one")
    np.testing.assert_allclose(
        joined[["proba_no", "proba_yes"]], model.predict_proba(X), rtol=1e-6
    )
    # Without an id column, the rows are numbered from 0, and the output says so.
    X.to_csv(tmp_path / "plain.csv", index=False)
    result = run(model_path, [tmp_path / "plain.csv"], tmp_path / "p.parquet")
    assert result.id_source == "row position"
    assert pq.read_schema(result.output).metadata[b"id_source"] == b"row position"
    assert pd.read_parquet(result.output)["id"].tolist() == list(range(len(X)))


def test_csv_ids_keep_their_text_and_one_type(tmp_path, table_model):
    # "007" stays "007"; ids that are not all integers are text in every
    # chunk (the first chunk's "1", "2" are not read as numbers while a later
    # one holds "X3"); long text ids survive an .npy output whole.
    model_path, X, model = table_model
    frame = X.iloc[:5].assign(id=["007", "008", "1", "2", "X3"])
    frame.to_csv(tmp_path / "in.csv", index=False)
    source, output = tmp_path / "in.csv", tmp_path / "o.parquet"
    result = run(model_path, [source], output, chunk_rows=2)
    assert pd.read_parquet(result.output)["id"].tolist() == frame["id"].tolist()
    long = [f"galaxy-{'x' * 80}-{i}" for i in range(5)]
    frame.assign(id=long).to_csv(tmp_path / "long.csv", index=False)
    run(model_path, [tmp_path / "long.csv"], tmp_path / "o.npy", chunk_rows=2)
    assert np.load(tmp_path / "o.ids.npy").tolist() == long
    # Integer ids stay integers (they join back onto integer keys).
    frame.assign(id=[10, -3, 0, 7, 12]).to_csv(tmp_path / "int.csv", index=False)
    result = run(model_path, [tmp_path / "int.csv"], tmp_path / "i.parquet")
    assert pd.read_parquet(result.output)["id"].tolist() == [10, -3, 0, 7, 12]
    # A missing integer id in a later chunk of an .npy output was cast to -2**63.
    ids = pd.array([10, 11, 12, None, 14], dtype="Int64")
    frame.assign(id=ids).to_parquet(tmp_path / "null.parquet")
    run(model_path, [tmp_path / "null.parquet"], tmp_path / "n.npy", chunk_rows=2)
    np.testing.assert_array_equal(
        np.load(tmp_path / "n.ids.npy"), [10, 11, 12, np.nan, 14]
    )
    # Beyond 2**53, floats would round ids into one another: refused, the
    # missing id coming after the large ones or before.
    large = [2**53 + 1, 2**53 + 3, 2**53 + 5]
    for k, ids in enumerate([[*large, None, 7], [7, None, *large]]):
        big = pd.array(ids, dtype="Int64")
        frame.assign(id=big).to_parquet(tmp_path / f"big{k}.parquet")
        output = tmp_path / f"b{k}.npy"
        with pytest.raises(ValueError, match="beyond 2\\*\\*53"):
            run(model_path, [tmp_path / f"big{k}.parquet"], output, chunk_rows=2)
        assert not output.exists()


def test_detected_id_column_the_model_was_trained_on(tmp_path):
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame({"id": np.arange(20.0), "a": np.linspace(0, 1, 20)})
    model = LinearRegression().fit(frame, 3 * frame["id"] + frame["a"])
    path = skestimators.save(model, tmp_path / "m.joblib")
    frame.iloc[::-1].to_csv(tmp_path / "in.csv", index=False)
    result = run(path, [tmp_path / "in.csv"], tmp_path / "o.csv")
    out = pd.read_csv(result.output)
    assert out["id"].tolist() == frame["id"].iloc[::-1].tolist()
    np.testing.assert_allclose(out["prediction"], model.predict(frame.iloc[::-1]))


def _imputed(X):
    from sklearn.impute import SimpleImputer

    return make_pipeline(SimpleImputer(), NetRegressor(**FAST)).fit(X, X["a"])


def _target_transformed(X):
    # The soil-carbon recipe wraps its network in a TransformedTargetRegressor:
    # rows with one missing value were left unscored (exit 3), though the
    # model reads them.
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.ensemble import HistGradientBoostingRegressor

    return TransformedTargetRegressor(
        HistGradientBoostingRegressor(max_iter=5), func=np.log1p, inverse_func=np.expm1
    ).fit(X, np.abs(X["a"]))


def _column_imputed(X):
    # scikit-learn tags a ColumnTransformer allow_nan=False whatever it holds:
    # every row with a missing value was left unscored, though the model
    # imputes it.
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression

    columns = make_column_transformer((SimpleImputer(), list(X.columns)))
    return make_pipeline(columns, LinearRegression()).fit(X, X["a"])


def _score_one_missing_value(tmp_path, model, X, runner=run):
    """Score ``X`` with one value missing (row 3) through a saved ``model``."""
    path = skestimators.save(model, tmp_path / "nan.joblib", format="pickle")
    frame = X.copy()
    frame.loc[3, "c"] = np.nan
    frame.to_parquet(tmp_path / "in.parquet")
    return runner(path, [tmp_path / "in.parquet"], tmp_path / "o.parquet"), frame


@pytest.mark.parametrize("make_model", [_imputed, _target_transformed, _column_imputed])
def test_models_taking_nan_score_every_row(tmp_path, table_model, make_model):
    _, X, _ = table_model
    model = make_model(X)
    result, frame = _score_one_missing_value(tmp_path, model, X)
    assert result.n_invalid == 0
    out = pd.read_parquet(result.output)
    np.testing.assert_allclose(out["prediction"], model.predict(frame), rtol=1e-6)


def test_column_transformer_refusing_nan_leaves_those_rows_out(tmp_path, table_model):
    # Its tags cannot tell: the chunk is tried whole, then without NaN rows.
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LinearRegression

    _, X, _ = table_model
    columns = make_column_transformer((StandardScaler(), list(X.columns)))
    model = make_pipeline(columns, LinearRegression()).fit(X, X["a"])
    result, frame = _score_one_missing_value(tmp_path, model, X, run_invalid)
    assert result.n_invalid == 1
    out = pd.read_parquet(result.output)
    assert np.flatnonzero(out["prediction"].isna()).tolist() == [3]
    keep = frame.index != 3
    np.testing.assert_allclose(out["prediction"][keep], model.predict(frame[keep]))


@pytest.mark.parametrize("chunk_rows", [4, 2])
def test_missing_category_refused_by_a_column_transformer_is_an_invalid_row(
    tmp_path, chunk_rows
):
    # Tried on every row, the encoder refused the chunk with "Found unknown
    # categories [nan]", which names no NaN: the whole job failed. Then every
    # row with a missing value in that chunk was left out, those the model
    # imputes too: a row's fate depended on the rows of its chunk.
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression
    from sklearn.preprocessing import OneHotEncoder

    X = pd.DataFrame({"color": ["red", "blue", "green"] * 10, "size": np.arange(30.0)})
    X.loc[3, "size"] = np.nan
    encode = make_column_transformer(
        (OneHotEncoder(), ["color"]), (SimpleImputer(), ["size"])
    )
    model = make_pipeline(encode, LinearRegression()).fit(X, X["size"].fillna(3))
    path = skestimators.save(model, tmp_path / "m.joblib", format="pickle")
    frame = X.head(4).copy()
    frame.loc[1, "color"] = None  # refused by the encoder
    frame.loc[2, "size"] = np.nan  # imputed: the model scores it
    frame.to_csv(tmp_path / "in.csv", index=False)
    result = run_invalid(
        path, [tmp_path / "in.csv"], tmp_path / "o.csv", chunk_rows=chunk_rows
    )
    (refused,) = result.invalid_preview
    assert refused["id"] == 1 and "unknown categories [nan]" in refused["reason"]
    out = pd.read_csv(result.output)
    assert np.flatnonzero(out["prediction"].isna()).tolist() == [1]
    keep = frame.index != 1
    np.testing.assert_allclose(out["prediction"][keep], model.predict(frame[keep]))


def test_rows_with_nothing_observed_are_not_scored(tmp_path, table_model):
    # A model taking NaN scored a row with every value NaN (a patch with no
    # observed pixel, exit code 0) where a map writes nodata.
    from sklearn.impute import SimpleImputer

    _, X, _ = table_model
    model = make_pipeline(SimpleImputer(), NetRegressor(**FAST)).fit(X, X["a"])
    path = skestimators.save(model, tmp_path / "imputed.joblib", format="pickle")
    frame = X.copy()
    frame.loc[3, "c"] = np.nan  # partly missing: the model's to read
    frame.loc[5, :] = np.nan  # nothing observed
    frame.to_parquet(tmp_path / "in.parquet")
    result = run_invalid(path, [tmp_path / "in.parquet"], tmp_path / "o.parquet")
    assert result.n_invalid == 1
    assert result.invalid_preview[0]["reason"].startswith("no value observed")
    out = pd.read_parquet(result.output)
    assert np.flatnonzero(out["prediction"].isna()).tolist() == [5]
    keep = frame.index != 5
    np.testing.assert_allclose(
        out["prediction"][keep], model.predict(frame[keep]), rtol=1e-6
    )


def test_parquet_files_whose_column_types_differ(tmp_path, table_model):
    # A column stored as integers in one file and as floats in the next gave
    # pyarrow's "Schema at index 1 was different" when a chunk spanned both
    # files, and scored when the chunks happened to end between them.
    model_path, X, model = table_model
    day1 = X.iloc[:100].assign(a=X["a"].iloc[:100].round().astype("int64"))
    day1.to_parquet(tmp_path / "day1.parquet", index=False)
    X.iloc[100:].to_parquet(tmp_path / "day2.parquet", index=False)
    inputs = [tmp_path / "day1.parquet", tmp_path / "day2.parquet"]
    result = run(model_path, inputs, tmp_path / "o.parquet", chunk_rows=40)
    out = pd.read_parquet(result.output)
    expected = model.predict_proba(pd.concat([day1.astype({"a": float}), X.iloc[100:]]))
    np.testing.assert_allclose(out[["proba_no", "proba_yes"]], expected, rtol=1e-6)
    # Ids that are numbers in one file and texts in the other: named.
    day1.assign(id=range(100)).to_parquet(tmp_path / "day1.parquet", index=False)
    X.iloc[100:].assign(id=[f"r{i}" for i in range(50)]).to_parquet(
        tmp_path / "day2.parquet", index=False
    )
    with pytest.raises(ScoringInputError, match=r"Column 'id' .* int64 in \['day1"):
        run(model_path, inputs, tmp_path / "o2.parquet", chunk_rows=40)
    assert not (tmp_path / "o2.parquet").exists()


def test_repeated_ids_of_a_table_warn(tmp_path, table_model):
    # They passed silently: a join of the predictions on the ids (the docs'
    # validate="one_to_one") then failed or paired rows wrongly.
    model_path, X, model = table_model
    ids = [f"r{i}" for i in range(len(X))]
    ids[7], ids[90], ids[140] = "r3", "r50", "r50"
    ids[10] = ids[11] = None  # missing ids are not repeats
    path = tmp_path / "in.parquet"
    X.assign(id=ids, key=range(len(X))).to_parquet(path)
    match = r"2 id\(s\) of the column 'id' .*'r3', 'r50'"
    with pytest.warns(UserWarning, match=match):
        result = run(model_path, [path], tmp_path / "o.csv", chunk_rows=40)
    assert len(pd.read_csv(result.output)) == len(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # unique ids: no warning
        run(model_path, [path], tmp_path / "o2.csv", id_column="key")


def test_missing_columns_are_named(tmp_path, table_model):
    model_path, X, _ = table_model
    X.drop(columns="b").to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(ScoringInputError, match=r"lacks 1 column.*\['b'\]"):
        run(model_path, [tmp_path / "in.csv"], tmp_path / "o.csv")
    X.to_csv(tmp_path / "ok.csv", index=False)
    with pytest.raises(ScoringInputError, match="--id-column 'nope'"):
        run(model_path, [tmp_path / "ok.csv"], tmp_path / "o.csv", id_column="nope")
    # A feature named as the id column: said so ("lacks ['a']" did not say why).
    with pytest.raises(ScoringInputError, match="'a' is named as the id column"):
        run(model_path, [tmp_path / "ok.csv"], tmp_path / "o.csv", id_column="a")
    # A header and blank lines hold no rows: refused, nothing left behind.
    (tmp_path / "blank.csv").write_text("a,b,c\n\n\n\n")
    with pytest.raises(ScoringInputError, match="holds no rows"):
        run(model_path, [tmp_path / "blank.csv"], tmp_path / "b.csv")
    left = {p.name for p in tmp_path.glob("b.csv*")}
    assert left == {"b.csv.lock"}  # the lock file stays, by design (_lock.py)


def test_parquet_row_groups_are_rechunked(tmp_path, table_model):
    model_path, X, model = table_model
    pq.write_table(
        pa.Table.from_pandas(X, preserve_index=False),
        tmp_path / "in.parquet",
        row_group_size=33,
    )
    result = run(
        model_path,
        [tmp_path / "in.parquet"],
        tmp_path / "o.parquet",
        chunk_rows=50,
        method="predict",
    )
    out = pd.read_parquet(result.output)
    assert result.n_chunks == 3 and list(out.columns) == ["id", "prediction"]
    assert out["prediction"].tolist() == model.predict(X).tolist()


@pytest.mark.parametrize("chunk_rows", [2, 6])
def test_parquet_ids_are_kept_as_stored(tmp_path, table_model, chunk_rows):
    # Through pandas, integer ids with a null became floats (ids above 2**53
    # rounded into one another), and a chunk of null text ids a float column
    # that the other chunks' text could not join.
    model_path, X, _ = table_model
    big = 2**60
    ids = pa.array([big + 1, big + 2, big + 3, None, big + 5, big + 6], pa.int64())
    table = pa.Table.from_pandas(X.iloc[:6], preserve_index=False)
    pq.write_table(table.append_column("objid", ids), tmp_path / "i.parquet")
    run(model_path, [tmp_path / "i.parquet"], tmp_path / "i.out.parquet",
        chunk_rows=chunk_rows, id_column="objid")  # fmt: skip
    out = pq.read_table(tmp_path / "i.out.parquet")
    assert out.schema.field("objid").type == pa.int64()
    assert out.column("objid").to_pylist() == ids.to_pylist()
    text = pa.array(["x", "y", None, None, "z", "w"])
    pq.write_table(table.append_column("name", text), tmp_path / "t.parquet")
    run(model_path, [tmp_path / "t.parquet"], tmp_path / "t.out.parquet",
        chunk_rows=2, id_column="name")  # fmt: skip
    assert pq.read_table(tmp_path / "t.out.parquet").column(0).to_pylist() == (
        text.to_pylist()
    )


def test_parquet_timestamp_ids_keep_their_time_zone(tmp_path, table_model):
    model_path, X, _ = table_model
    stamps = pa.array(
        pd.date_range("2020-01-01", periods=4, freq="h", tz="Europe/Paris")
    )
    table = pa.Table.from_pandas(X.iloc[:4], preserve_index=False)
    pq.write_table(table.append_column("when", stamps), tmp_path / "w.parquet")
    run(model_path, [tmp_path / "w.parquet"], tmp_path / "w.out.parquet",
        chunk_rows=2, id_column="when")  # fmt: skip
    out = pq.read_table(tmp_path / "w.out.parquet").column("when")
    assert out.type == stamps.type and out.to_pylist() == stamps.to_pylist()


def test_csv_id_minus_zero_stays_text(tmp_path, table_model):
    # "-0" was read as the integer 0, beside a real 0.
    model_path, X, _ = table_model
    frame = X.iloc[:2].assign(id=["-0", "0"])
    frame.to_csv(tmp_path / "z.csv", index=False)
    run(model_path, [tmp_path / "z.csv"], tmp_path / "z.out.csv", id_column="id")
    assert pd.read_csv(tmp_path / "z.out.csv", dtype=str)["id"].tolist() == ["-0", "0"]


def test_output_cannot_overwrite_the_models_sidecar(tmp_path, spectra_model):
    # Writing the predictions over <model>.json made the model unloadable.
    model_path, npy, _, _ = spectra_model
    side = sidecar_path(model_path)
    before = side.read_text()
    with pytest.raises(ScoringInputError, match="would overwrite the input"):
        run(model_path, [npy], side, output_format="csv")
    assert side.read_text() == before


def test_damaged_input_entry_of_the_sidecar_is_named(tmp_path, spectra_model):
    model_path, npy, _, model = spectra_model
    copy = skestimators.save(model, tmp_path / "m.joblib")
    side = sidecar_path(copy)
    meta = json.loads(side.read_text())
    for damaged in ("X", {"kind": "array"}, {"kind": "array", "inputs": {"X": 3}}):
        side.write_text(json.dumps({**meta, "input": damaged}))
        with pytest.raises(ModelFileError, match="damaged 'input' entry"):
            run(copy, [npy], tmp_path / "o.parquet")


@pytest.fixture(scope="module")
def exoplanet_model(tmp_path_factory):
    """A spectra + aux classifier on simulated planets, saved."""
    from skestimators.datasets import make_exoplanet
    from skestimators.preprocessing import InputTransformer, NDStandardScaler

    X, y = make_exoplanet(90, random_state=0)
    model = make_pipeline(
        InputTransformer({"spectra": NDStandardScaler(), "aux": StandardScaler()}),
        skestimators.SpectraAuxClassifier(
            width=8, aux_width=4, aux_depth=1, head_width=8, **FAST
        ),
    ).fit(X, y)
    folder = tmp_path_factory.mktemp("exoplanet")
    path = skestimators.save(model, folder / "exo.joblib", training_data=(X, y))
    return path, X, model


def test_exoplanet_folder(tmp_path, exoplanet_model):
    path, X, model = exoplanet_model
    folder = tmp_path / "planets"
    folder.mkdir()
    spectra = X["spectra"].copy()
    spectra[4, 0, 1] = np.nan
    np.save(folder / "spectra.npy", spectra)
    X["aux"].to_csv(folder / "auxiliary.csv", index=False)
    result = run_invalid(path, [folder], tmp_path / "o.parquet", chunk_rows=32)
    out = pd.read_parquet(result.output)
    assert list(out.columns) == ["id", "proba_water", "proba_cloud"]
    # No targets.csv: the ids are the row positions, and the output says so.
    assert out["id"].tolist() == list(range(90))
    assert result.id_source == "row position"
    assert pq.read_schema(result.output).metadata[b"id_source"] == b"row position"
    keep = np.arange(90) != 4
    np.testing.assert_allclose(
        out.loc[keep, ["proba_water", "proba_cloud"]],
        model.predict_proba(X[np.flatnonzero(keep)]),
        rtol=1e-5,
        atol=1e-6,
    )
    assert result.invalid_preview == [{"id": 4, "reason": "NaN or infinite value"}]
    # Values that cannot be right are skipped and named, as load_exoplanet
    # refuses them in training.
    implausible = X["spectra"].copy()
    implausible[7, 3, 2] = -1e-5  # a negative uncertainty
    implausible[9, [10, 11], 0] = implausible[9, [11, 10], 0]  # bins swapped
    np.save(folder / "spectra.npy", implausible)
    result = run_invalid(path, [folder], tmp_path / "o4.parquet", chunk_rows=32)
    reasons = {r["id"]: r["reason"] for r in result.invalid_preview}
    assert sorted(reasons) == [7, 9]
    assert "uncertainties (channel 2) not positive" in reasons[7]
    assert "not running one way" in reasons[9]
    # Text in the auxiliary table: named as in tables, not as NaN.
    np.save(folder / "spectra.npy", X["spectra"])
    aux = X["aux"].astype(object)
    aux.iloc[5, 1] = "unknown"
    aux.to_csv(folder / "auxiliary.csv", index=False)
    result = run_invalid(path, [folder], tmp_path / "o5.parquet", chunk_rows=32)
    assert result.invalid_preview == [
        {
            "id": 5,
            "reason": f"text in numeric column {aux.columns[1]!r} of auxiliary.csv",
        }
    ]
    X["aux"].to_csv(folder / "auxiliary.csv", index=False)
    np.save(folder / "spectra.npy", spectra[:, :40])
    with pytest.raises(
        ScoringInputError, match=r"input 'spectra' rows of shape \(40, 3\)"
    ):
        run(path, [folder], tmp_path / "o2.parquet")
    np.save(tmp_path / "flat.npy", spectra[:, :, 1])
    with pytest.raises(ScoringInputError, match="expects named inputs"):
        run(path, [tmp_path / "flat.npy"], tmp_path / "o3.parquet")


def _copy_exoplanet_folder(folder, order):
    """The bundled exoplanet folder, its planets (rows of all files) in ``order``."""
    from skestimators.datasets._exoplanet import _BUNDLED

    folder.mkdir()
    np.save(folder / "spectra.npy", np.load(_BUNDLED / "spectra.npy")[order])
    for name in ("auxiliary.csv", "targets.csv"):
        table = pd.read_csv(_BUNDLED / name).iloc[order]
        table.to_csv(folder / name, index=False)


@pytest.mark.parametrize("fmt", ["parquet", "csv", "npy"])
def test_exoplanet_predictions_join_targets_on_id(tmp_path, exoplanet_model, fmt):
    """Predictions carry the planets' ids (``targets.csv``), not row positions."""
    from skestimators.datasets import load_exoplanet

    path, _, model = exoplanet_model
    X, y = load_exoplanet()
    order = np.random.RandomState(0).permutation(len(y))  # rows no longer by id
    _copy_exoplanet_folder(tmp_path / "planets", order)
    result = run(path, [tmp_path / "planets"], tmp_path / f"o.{fmt}", chunk_rows=700)
    assert result.id_source == "column 'id' of targets.csv"
    if fmt == "parquet":
        out = pd.read_parquet(result.output)
        metadata = pq.read_schema(result.output).metadata
        assert metadata[b"id_source"] == b"column 'id' of targets.csv"
    elif fmt == "csv":
        out = pd.read_csv(result.output)
    else:
        columns = ["proba_water", "proba_cloud"]
        out = pd.DataFrame(np.load(result.output), columns=columns)
        out.insert(0, "id", np.load(tmp_path / "o.ids.npy"))
    assert out["id"].tolist() == y.index[order].tolist()
    joined = y.join(out.set_index("id"), how="inner")
    assert len(joined) == len(y) == 2400
    np.testing.assert_allclose(
        joined[["proba_water", "proba_cloud"]],
        model.predict_proba(X),  # the loader's rows, in the order of y
        rtol=1e-5,
        atol=1e-6,
    )


def test_exoplanet_ids_are_checked(tmp_path, exoplanet_model):
    path, _, _ = exoplanet_model
    folder = tmp_path / "planets"
    _copy_exoplanet_folder(folder, np.arange(50))
    targets = pd.read_csv(folder / "targets.csv")
    targets.loc[3, "id"] = targets.loc[2, "id"]
    targets.to_csv(folder / "targets.csv", index=False)
    with pytest.raises(ScoringInputError, match="'id' must hold unique integers"):
        run(path, [folder], tmp_path / "o.parquet")
    targets.iloc[:40].to_csv(folder / "targets.csv", index=False)
    with pytest.raises(ScoringInputError, match="spectra.npy has 50, targets.csv 40"):
        run(path, [folder], tmp_path / "o.parquet")


def test_exoplanet_ids_beyond_float_precision(tmp_path, exoplanet_model):
    # Parsed through float64, ids above 2**53 were rounded: distinct ones were
    # refused as repeated, others came out as other ids.
    path, _, _ = exoplanet_model
    folder = tmp_path / "planets"
    _copy_exoplanet_folder(folder, np.arange(50))
    targets = pd.read_csv(folder / "targets.csv")
    ids = 2**60 + 2 * np.arange(50, dtype=np.int64) + 1
    targets["id"] = ids
    targets.to_csv(folder / "targets.csv", index=False)
    run(path, [folder], tmp_path / "o.parquet")
    assert pd.read_parquet(tmp_path / "o.parquet")["id"].tolist() == ids.tolist()
    # Ids written as floats (a column that went through them) are integers
    # still, as load_exoplanet reads them.
    targets["id"] = np.arange(50) + 1.0
    targets.to_csv(folder / "targets.csv", index=False)
    run(path, [folder], tmp_path / "f.parquet")
    assert pd.read_parquet(tmp_path / "f.parquet")["id"].tolist() == list(range(1, 51))


def test_exoplanet_ids_from_an_id_column_of_the_auxiliary_table(
    tmp_path, exoplanet_model
):
    # pandas' to_csv writes the index, an "id" column: it was ignored and row
    # positions went out under the header "id", so a join paired the wrong
    # planets.
    path, _, model = exoplanet_model
    folder = tmp_path / "planets"
    _copy_exoplanet_folder(folder, np.arange(60)[::-1])
    targets = pd.read_csv(folder / "targets.csv")
    aux = pd.read_csv(folder / "auxiliary.csv")
    aux.index = pd.Index(targets["id"], name="id")
    aux.to_csv(folder / "auxiliary.csv")  # with the index
    result = run(path, [folder], tmp_path / "o.parquet")
    assert result.id_source == "column 'id' of targets.csv"  # they agree
    (folder / "targets.csv").unlink()
    result = run(path, [folder], tmp_path / "o2.parquet")
    assert result.id_source == "column 'id' of auxiliary.csv"
    out = pd.read_parquet(result.output)
    assert out["id"].tolist() == targets["id"].tolist()
    # Two id columns that disagree: refused.
    shuffled = targets.sample(frac=1.0, random_state=0)
    shuffled.to_csv(folder / "targets.csv", index=False)
    with pytest.raises(ScoringInputError, match="'id' columns of auxiliary.csv"):
        run(path, [folder], tmp_path / "o3.parquet")


@pytest.mark.parametrize("sidecar", [True, False])
def test_image_folder_reads_what_load_image_folder_reads(tmp_path, sidecar):
    # PNG and TIFF images were skipped without a word (exit code 0). Without
    # a sidecar (trust=True), images were read at 69 pixels, not the model's.
    from PIL import Image

    from skestimators.datasets import load_image_folder

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.RandomState(0)
    for i, suffix in enumerate([".jpg", ".png", ".tif", ".png"]):
        pixels = rng.randint(0, 256, (20, 20, 3)).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}{suffix}")
    pd.DataFrame({"id": range(4), "label": [0, 1, 0, 1]}).to_csv(
        tmp_path / "labels.csv", index=False
    )
    X, y, ids = load_image_folder(folder, tmp_path / "labels.csv", crop=None, size=8)
    model = NetRegressor(**{**FAST, "max_epochs": 1}).fit(X, y.astype(float))
    path = skestimators.save(model, tmp_path / "m.joblib")
    if not sidecar:
        sidecar_path(path).unlink()
    result = run(path, [folder], tmp_path / "o.parquet", crop=None, trust=not sidecar)
    out = pd.read_parquet(result.output)
    assert out["GalaxyID"].tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(out.iloc[:, 1], model.predict(X), rtol=1e-5, atol=1e-6)


def test_image_folder_in_the_layout_of_a_channels_last_model(tmp_path):
    # The reader built (3, 69, 69) images whatever the model took, and blamed
    # the folder: "rows of shape (3, 69, 69), but the model expects (8, 8, 3)".
    from PIL import Image

    from skestimators.datasets import load_image_folder

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.RandomState(0)
    for i in range(5):
        pixels = rng.randint(0, 256, (20, 20, 3)).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    pd.DataFrame({"id": range(5), "label": [0, 1, 0, 1, 0]}).to_csv(
        tmp_path / "labels.csv", index=False
    )
    X, y, _ = load_image_folder(folder, tmp_path / "labels.csv", crop=None, size=8)
    last = np.moveaxis(X, 1, -1)  # (n, 8, 8, 3)
    model = NetRegressor(**{**FAST, "max_epochs": 1}).fit(last, y.astype(float))
    path = skestimators.save(model, tmp_path / "m.joblib")
    result = run(path, [folder], tmp_path / "o.parquet", crop=None)
    out = pd.read_parquet(result.output)
    np.testing.assert_allclose(
        out.iloc[:, 1], model.predict(last), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("channels_last", [False, True])
def test_image_folder_through_an_image_preprocessor_pipeline(tmp_path, channels_last):
    # The model file recorded the pipeline's input as (3,), ImagePreprocessor's
    # n_features_in_, and the folder was refused: "the model expects (3,)".
    from skestimators.datasets import load_image_folder
    from skestimators.preprocessing import ImagePreprocessor

    folder = _image_folder(tmp_path, 20, n=5)
    X, y, _ = load_image_folder(folder, tmp_path / "labels.csv", crop=None, size=8)
    if channels_last:
        X = np.moveaxis(X, 1, -1)
    model = make_pipeline(
        ImagePreprocessor(), NetRegressor(**{**FAST, "max_epochs": 1})
    ).fit(X, y)
    path = skestimators.save(model, tmp_path / "m.joblib")
    shape = skestimators.read_metadata(path)["input"]["inputs"]["X"]["shape"]
    assert shape == ([8, 8, 3] if channels_last else [3, 8, 8])
    result = run(path, [folder], tmp_path / "o.parquet", crop=None)
    out = pd.read_parquet(result.output)
    np.testing.assert_allclose(out.iloc[:, 1], model.predict(X), rtol=1e-5, atol=1e-6)


def _image_folder(tmp_path, side, n=6):
    from PIL import Image

    folder = tmp_path / f"images{side}"
    folder.mkdir()
    rng = np.random.RandomState(side)
    for i in range(n):
        pixels = rng.randint(0, 256, (side, side, 3)).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    pd.DataFrame({"id": range(n), "label": rng.rand(n)}).to_csv(
        tmp_path / "labels.csv", index=False
    )
    return folder


def test_image_folder_read_with_the_crop_the_model_file_records(tmp_path):
    # score cropped every folder to 207 px unless told: a model trained on
    # images read with another crop scored other pixels without a word.
    from skestimators.datasets import load_image_folder

    folder = _image_folder(tmp_path, 20)
    X, y, _ = load_image_folder(folder, tmp_path / "labels.csv", crop=12, size=8)
    model = NetRegressor(**{**FAST, "max_epochs": 1}).fit(X, y)
    path = skestimators.save(model, tmp_path / "m.joblib", crop=12)
    assert skestimators.read_metadata(path)["crop"] == 12
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = run(path, [folder], tmp_path / "o.parquet")
    out = pd.read_parquet(result.output)
    np.testing.assert_allclose(out.iloc[:, 1], model.predict(X), rtol=1e-5, atol=1e-6)
    # Whole images, recorded as None.
    X, y, _ = load_image_folder(folder, tmp_path / "labels.csv", crop=None, size=8)
    model = NetRegressor(**{**FAST, "max_epochs": 1}).fit(X, y)
    path = skestimators.save(model, tmp_path / "w.joblib", crop=None)
    out = pd.read_parquet(run(path, [folder], tmp_path / "w.parquet").output)
    np.testing.assert_allclose(out.iloc[:, 1], model.predict(X), rtol=1e-5, atol=1e-6)
    with pytest.raises(skestimators.ModelFileError, match="crop must be"):
        skestimators.save(model, tmp_path / "x.joblib", crop=0)


def test_image_folder_of_the_models_size_is_read_whole(tmp_path):
    # Images already of the model's size were cropped to 207 px (refused as
    # too small) or, through a pipeline of 20 px images, cropped and blown up.
    from sklearn.pipeline import make_pipeline

    from skestimators.datasets import load_image_folder
    from skestimators.preprocessing import ImagePreprocessor

    folder = _image_folder(tmp_path, 20)
    X, y, _ = load_image_folder(folder, tmp_path / "labels.csv", crop=None, size=None)
    model = make_pipeline(
        ImagePreprocessor(crop=12, size=8), NetRegressor(**{**FAST, "max_epochs": 1})
    ).fit(X, y)
    path = skestimators.save(model, tmp_path / "m.joblib")  # no crop recorded
    with pytest.warns(UserWarning, match="does not record the crop"):
        result = run(path, [folder], tmp_path / "o.parquet")
    out = pd.read_parquet(result.output)
    np.testing.assert_allclose(out.iloc[:, 1], model.predict(X), rtol=1e-5, atol=1e-6)


def test_image_folder_with_an_unreadable_image(tmp_path):
    from skestimators.datasets import load_galaxy_zoo, write_galaxy_zoo_folder

    galaxies = write_galaxy_zoo_folder(
        tmp_path / "gz", 6, image_size=220, random_state=0
    )
    X, y, ids = load_galaxy_zoo(galaxies.images_dir, galaxies.solutions_csv, size=16)
    model = NetRegressor(**{**FAST, "max_epochs": 1}).fit(X, y.iloc[:, :3])
    path = skestimators.save(model, tmp_path / "gz.joblib")
    (galaxies.images_dir / f"{ids[2]}.jpg").write_bytes(b"broken")
    result = run_invalid(
        path, [galaxies.images_dir], tmp_path / "o.parquet", chunk_rows=4
    )
    out = pd.read_parquet(result.output)
    assert out.columns[0] == "GalaxyID" and out["GalaxyID"].tolist() == sorted(ids)
    assert (
        result.n_invalid == 1
        and "unreadable image" in result.invalid_preview[0]["reason"]
    )
    keep = np.arange(6) != 2
    np.testing.assert_allclose(
        out.iloc[keep, 1:], model.predict(X[keep]), rtol=1e-5, atol=1e-6
    )


def test_image_ids_are_the_file_stems(tmp_path):
    from PIL import Image

    from skestimators.scoring._inputs import open_input

    def write(folder, stems):
        folder.mkdir()
        for stem in stems:
            Image.new("RGB", (8, 8)).save(folder / f"{stem}.jpg")
        return folder

    numbers = open_input([write(tmp_path / "n", ["587722981750014083", "12", "3"])])
    assert numbers.ids.tolist() == [3, 12, 587722981750014083]  # as load_galaxy_zoo
    assert numbers.id_source == "image file stem"
    names = open_input([write(tmp_path / "s", ["m101", "ngc 4414", "3"])])
    assert names.ids.tolist() == ["3", "m101", "ngc 4414"]
    with pytest.raises(ScoringInputError, match=r"e\.g\. 7 \(007\.jpg, 7\.jpg\)"):
        open_input([write(tmp_path / "d", ["7", "007", "8"])])


def test_rasters_are_mapped_to_geotiff(tmp_path):
    rasterio = pytest.importorskip("rasterio", reason="needs the geo extra")
    from skestimators.datasets import make_soc, make_soc_rasters
    from skestimators.mapping import predict_raster

    X, y, _ = make_soc(60, n_years=2, window=3, grid_shape=(24, 24), random_state=0)
    model = NetRegressor(**{**FAST, "max_epochs": 1}).fit(X, y)
    path = skestimators.save(model, tmp_path / "soc.joblib")
    rasters = make_soc_rasters(
        tmp_path / "r", n_years=2, grid_shape=(24, 24), random_state=0
    )
    result = run(path, rasters, tmp_path / "map.tif")
    predict_raster(model, rasters, tmp_path / "ref.tif", window=3)
    with (
        rasterio.open(result.output) as got,
        rasterio.open(tmp_path / "ref.tif") as ref,
    ):
        np.testing.assert_allclose(got.read(), ref.read(), rtol=1e-6, atol=1e-7)
    with pytest.raises(ScoringInputError, match="1 raster"):
        run(path, rasters[:1], tmp_path / "map2.tif")
    # Their folder was read as galaxy images of 69 pixels, and refused for
    # its shape: the message now says to pass the files in time order.
    with pytest.raises(ScoringInputError, match=r"pass the files themselves"):
        run(path, [tmp_path / "r"], tmp_path / "map3.tif")

    # A run killed while writing the map: its partial map was a temporary of
    # a temporary, which later runs did not recognise, and it stayed.
    killed = tmp_path / "killed.tif"
    script = (
        "import os, signal, sys\n"
        "import skestimators.mapping._raster as raster\n"
        "from skestimators.scoring import score\n"
        "def write(estimator, rasters, partial, *args):\n"
        "    partial.write_bytes(b'half a map')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "raster._write_map = write\n"
        "score(sys.argv[1], sys.argv[2:-1], sys.argv[-1], progress=False)\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(path), *map(str, rasters), str(killed)],
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert any(p.name.startswith(".") for p in tmp_path.iterdir())
    run(path, rasters, killed)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def _failing_after(n_ok, original):
    calls = {"n": 0}

    def run_chunk(*args, **kwargs):
        if calls["n"] >= n_ok:
            raise KeyboardInterrupt  # as if the job were killed here
        calls["n"] += 1
        return original(*args, **kwargs)

    return run_chunk


def test_interrupted_run_resumes_and_output_is_atomic(
    tmp_path, spectra_model, monkeypatch
):
    model_path, npy, X, model = spectra_model
    out = tmp_path / "o.parquet"
    out.write_text("previous complete output")
    original = score_module.run_chunk
    monkeypatch.setattr(score_module, "run_chunk", _failing_after(2, original))
    with pytest.raises(KeyboardInterrupt):
        run(model_path, [npy], out, chunk_rows=40)
    assert out.read_text() == "previous complete output"  # untouched
    parts = sorted(p.name for p in (tmp_path / "o.parquet.parts").iterdir())
    assert parts == ["manifest.jsonl", "part-000000.parquet", "part-000001.parquet"]
    lines = (tmp_path / "o.parquet.parts" / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(line).get("chunk") for line in lines[1:]] == [0, 1]
    # A different chunking is another job: refused, or discarded with restart.
    with pytest.raises(ResumeConflictError, match="chunk_rows"):
        run(model_path, [npy], out, chunk_rows=30)
    monkeypatch.setattr(score_module, "run_chunk", original)
    result = run(model_path, [npy], out, chunk_rows=40)
    assert result.resumed_chunks == 2 and result.n_chunks == 6
    frame = pd.read_parquet(out)
    np.testing.assert_allclose(
        frame[["level", "spread"]], model.predict(X), rtol=1e-5, atol=1e-6
    )
    assert not (tmp_path / "o.parquet.parts").exists()


@pytest.mark.parametrize("failing", ["parts", "assembly"])
def test_a_full_disk_names_where_and_the_run_resumes(
    tmp_path, spectra_model, monkeypatch, failing
):
    # pyarrow's "[Errno 28] Error writing bytes to file" named no file.
    import errno

    from skestimators.scoring import _writer

    model_path, npy, X, model = spectra_model
    out = tmp_path / "o.parquet"
    name = "_write_table" if failing == "parts" else "to_parquet"
    original = getattr(_writer, name)
    written = []

    def full(*args):
        if len(written) == 2 or failing == "assembly":
            raise OSError(errno.ENOSPC, "Error writing bytes to file")
        written.append(args)
        return original(*args)

    monkeypatch.setattr(_writer, name, full)
    parts = tmp_path / "o.parquet.parts"
    with pytest.raises(OSError, match=f"No space left .* kept in {parts}; free some"):
        run(model_path, [npy], out, chunk_rows=40)
    assert not out.exists()
    monkeypatch.setattr(_writer, name, original)
    result = run(model_path, [npy], out, chunk_rows=40)
    assert result.resumed_chunks == (2 if failing == "parts" else 6)
    expected = model.predict(X)
    got = pd.read_parquet(out)[["level", "spread"]]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def _rewrite_keeping_size_and_mtime(path, rows, values):
    """Overwrite ``rows`` of a ``.npy`` in place, as ``cp -p`` would leave it."""
    stat = path.stat()
    array = np.load(path, mmap_mode="r+")
    array[rows] = values
    array.flush()
    del array
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    assert path.stat().st_mtime_ns == stat.st_mtime_ns


def test_resume_rescores_chunks_whose_content_changed(
    tmp_path, spectra_model, monkeypatch
):
    model_path, npy, X, model = spectra_model
    data = tmp_path / "X.npy"
    np.save(data, X)
    out = tmp_path / "o.parquet"
    original = score_module.run_chunk
    monkeypatch.setattr(score_module, "run_chunk", _failing_after(3, original))
    with pytest.raises(KeyboardInterrupt):
        run(model_path, [data], out, chunk_rows=40)
    manifest = tmp_path / "o.parquet.parts" / "manifest.jsonl"
    records = [json.loads(line) for line in manifest.read_text().splitlines()[1:]]
    assert all(len(r["fingerprint"]) == 32 for r in records)
    # Rows 45..59 (in chunk 1 of the three done) change; size and mtime do not.
    changed = X.copy()
    changed[45:60] = np.flip(X[45:60], axis=1) * 2.0
    _rewrite_keeping_size_and_mtime(data, slice(45, 60), changed[45:60])
    monkeypatch.setattr(score_module, "run_chunk", original)
    result = run(model_path, [data], out, chunk_rows=40)
    assert result.resumed_chunks == 2 and result.rescored_chunks == 1
    assert result.n_chunks == 6 and result.n_rows == len(X)
    frame = pd.read_parquet(out)
    np.testing.assert_array_equal(frame["id"], np.arange(len(X)))
    expected = model.predict(changed)
    assert not np.allclose(expected[45:60], model.predict(X)[45:60])
    np.testing.assert_allclose(
        frame[["level", "spread"]], expected, rtol=1e-5, atol=1e-6
    )


def _interrupted_csv_job(tmp_path, table_model, monkeypatch):
    """``(csv, output)`` of a CSV scoring job stopped after 2 of its 3 chunks."""
    model_path, X, _ = table_model
    csv, out = tmp_path / "t.csv", tmp_path / "t.parquet"
    X.to_csv(csv, index=False)
    original = score_module.run_chunk
    monkeypatch.setattr(score_module, "run_chunk", _failing_after(2, original))
    with pytest.raises(KeyboardInterrupt):
        run(model_path, [csv], out, chunk_rows=50)
    monkeypatch.setattr(score_module, "run_chunk", original)
    return csv, out


def test_tables_are_fingerprinted_by_content(tmp_path, table_model, monkeypatch):
    model_path, X, model = table_model
    csv, out = _interrupted_csv_job(tmp_path, table_model, monkeypatch)
    stat = csv.stat()
    text = csv.read_text().splitlines()
    text[1] = ",".join(reversed(text[1].split(",")))  # a <-> c: same length
    csv.write_text("\n".join(text) + "\n")
    os.utime(csv, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert csv.stat().st_size == stat.st_size
    result = run(model_path, [csv], out, chunk_rows=50)
    assert (result.resumed_chunks, result.rescored_chunks) == (1, 1)
    frame = pd.read_parquet(out)
    np.testing.assert_allclose(
        frame.filter(like="proba_"), model.predict_proba(pd.read_csv(csv)), atol=1e-6
    )


def test_a_touched_input_still_resumes(tmp_path, table_model, monkeypatch):
    # Copying or touching an input changes its modification time, not its
    # content: the job resumes (the chunk fingerprints check the content).
    model_path, X, model = table_model
    csv, out = _interrupted_csv_job(tmp_path, table_model, monkeypatch)
    stat = csv.stat()
    os.utime(csv, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**10))
    result = run(model_path, [csv], out, chunk_rows=50)
    assert (result.resumed_chunks, result.rescored_chunks) == (2, 0)
    np.testing.assert_allclose(
        pd.read_parquet(out).filter(like="proba_"), model.predict_proba(X), atol=1e-6
    )


def test_a_locked_output_is_refused_and_left_alone(tmp_path, spectra_model):
    model_path, npy, X, _ = spectra_model
    out = tmp_path / "o.parquet"
    out.write_text("previous complete output")
    with output_lock(out):
        owner = json.loads((tmp_path / "o.parquet.lock.owner").read_text())
        assert owner["pid"] == os.getpid()
        message = (
            rf"another run \(pid {os.getpid()}, started .+\) is writing .*o\.parquet$"
        )
        with pytest.raises(OutputLockedError, match=message):
            run(model_path, [npy], out, chunk_rows=40)
        assert out.read_text() == "previous complete output"
        assert not (tmp_path / "o.parquet.parts").exists()
    assert not (tmp_path / "o.parquet.lock.owner").exists()
    result = run(model_path, [npy], out, chunk_rows=40)  # the lock is free again
    assert result.n_rows == len(X)


def test_restart_discards_other_job(tmp_path, spectra_model, monkeypatch):
    model_path, npy, X, _ = spectra_model
    monkeypatch.setattr(
        score_module, "run_chunk", _failing_after(1, score_module.run_chunk)
    )
    with pytest.raises(KeyboardInterrupt):
        run(model_path, [npy], tmp_path / "o.parquet", chunk_rows=40)
    monkeypatch.undo()
    result = run(model_path, [npy], tmp_path / "o.parquet", chunk_rows=30, restart=True)
    assert result.resumed_chunks == 0 and result.n_rows == len(X)


def test_missing_sidecar_needs_trust(tmp_path, spectra_model):
    model_path, npy, X, _ = spectra_model
    copy = tmp_path / "copy.joblib"
    copy.write_bytes(model_path.read_bytes())
    with pytest.raises(ValueError, match="no sidecar"):
        run(copy, [npy], tmp_path / "o.parquet")
    assert run(copy, [npy], tmp_path / "o.parquet", trust=True).n_rows == len(X)


def test_dask_local_cluster_matches_local(tmp_path, spectra_model, caplog):
    # The job's own cluster logged some 25 INFO lines (and each failed
    # chunk's traceback on its worker) around the one-line error.
    import logging

    pytest.importorskip("distributed", reason="needs the dask extra")
    level = logging.getLogger("distributed").level
    model_path, npy, X, model = spectra_model
    bad = X.copy()
    bad[10, 0, 0] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    result = run_invalid(
        model_path,
        [tmp_path / "bad.npy"],
        tmp_path / "o.parquet",
        chunk_rows=40,
        scheduler="local",
        n_workers=1,
    )
    frame = pd.read_parquet(result.output)
    assert result.n_chunks == 6 and result.n_invalid == 1
    chatter = [r for r in caplog.records if r.name.startswith("distributed")]
    assert chatter == []
    assert logging.getLogger("distributed").level == level  # restored
    keep = np.arange(len(X)) != 10
    np.testing.assert_allclose(
        frame.loc[keep, ["level", "spread"]], model.predict(X[keep]), rtol=1e-5
    )


def test_dask_workers_in_another_directory_write_the_parts(tmp_path, monkeypatch):
    # On a cluster the workers' working directory is not the client's: the
    # relative paths of a job (output, inputs) must reach them made absolute.
    distributed = pytest.importorskip("distributed", reason="needs the dask extra")
    from sklearn.linear_model import LinearRegression

    (tmp_path / "job").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "job")
    X = np.arange(20.0).reshape(10, 2)
    skestimators.save(LinearRegression().fit(X, X.sum(1)), "m.joblib")
    np.save("X.npy", X)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.run(os.chdir, str(tmp_path / "elsewhere"))
        result = run("m.joblib", ["X.npy"], "o.parquet", chunk_rows=4, scheduler=client)
    assert result.n_chunks == 3
    out = pd.read_parquet("o.parquet")
    np.testing.assert_allclose(out["prediction"], X.sum(1))
    assert not any((tmp_path / "elsewhere").iterdir())


def _slow_or_failing(X):
    import time

    if (np.asarray(X) > 50).any():
        raise RuntimeError("bad chunk")
    time.sleep(2)
    return X


def test_a_failed_dask_job_cancels_its_chunks_on_the_users_cluster(tmp_path):
    # The chunks in flight went on after the error (and the output's lock was
    # released), writing parts on the user's cluster.
    distributed = pytest.importorskip("distributed", reason="needs the dask extra")
    from sklearn.linear_model import LinearRegression
    from sklearn.preprocessing import FunctionTransformer

    X = np.random.RandomState(0).rand(200, 2)
    X[5, 0] = 99.0  # the first chunk fails
    model = make_pipeline(FunctionTransformer(_slow_or_failing), LinearRegression())
    model.fit(np.zeros((4, 2)), np.arange(4.0))
    path = skestimators.save(model, tmp_path / "m.joblib", format="pickle")
    np.save(tmp_path / "X.npy", X)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with pytest.raises(RuntimeError, match="bad chunk"):
            run(path, [tmp_path / "X.npy"], tmp_path / "o.parquet", chunk_rows=20,
                scheduler=client, trust=True)  # fmt: skip
        assert not any(client.processing().values())


def test_chunks_are_read_from_another_directory(tmp_path, monkeypatch):
    # What a Dask worker does with the chunk specs: read them in its own cwd.
    from PIL import Image

    from skestimators.scoring._inputs import open_input

    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    np.save("X.npy", np.ones((3, 2)))
    _exoplanet_folder(tmp_path / "planets", 2, "RR")
    (tmp_path / "images").mkdir()
    for stem in ("1", "2"):
        Image.new("RGB", (8, 8)).save(tmp_path / "images" / f"{stem}.jpg")
    for inputs in (["X.npy"], ["planets"], ["images"]):
        specs = list(open_input(inputs, crop=None).specs(2))
        monkeypatch.chdir(tmp_path / "elsewhere")
        for spec in specs:
            assert not spec.load().bad, inputs
        monkeypatch.chdir(tmp_path)


def test_score_named_input_model_from_multiinput_table_is_refused(tmp_path, two_inputs):
    spectra, aux, y = two_inputs
    model = NetClassifier(**FAST).fit(MultiInput(spectra=spectra, aux=aux), y[:, 0])
    path = skestimators.save(model, tmp_path / "m.joblib")
    pd.DataFrame(aux).to_csv(tmp_path / "aux.csv", index=False)
    with pytest.raises(ScoringInputError, match="named inputs"):
        run(path, [tmp_path / "aux.csv"], tmp_path / "o.csv")


# -- malformed and unusual inputs, with small scikit-learn models --------------------
@pytest.fixture(scope="module")
def sk_models(tmp_path_factory):
    """A LogisticRegression pipeline on columns a, b, c (classes no/yes) and a
    LinearRegression on (n, 3) arrays, saved, with their training rows."""
    from sklearn.linear_model import LinearRegression, LogisticRegression

    folder = tmp_path_factory.mktemp("sk")
    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    y = np.where(X["a"] > 0, "yes", "no")
    clf = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    reg = LinearRegression().fit(X.to_numpy(), 2 * X["a"].to_numpy())
    clf_path = skestimators.save(clf, folder / "clf.joblib")
    reg_path = skestimators.save(
        reg, folder / "reg.joblib", training_data=(X.to_numpy(),)
    )
    return clf_path, reg_path, X, clf


def test_parquet_index_named_id_gives_the_ids(tmp_path, sk_models):
    clf_path, _, X, clf = sk_models
    frame = X.head(6).set_axis([f"g{i}" for i in range(6)]).rename_axis("id")
    frame.to_parquet(tmp_path / "indexed.parquet")  # the index is saved as "id"
    result = run(clf_path, [tmp_path / "indexed.parquet"], tmp_path / "o.csv")
    out = pd.read_csv(result.output)
    assert out["id"].tolist() == [f"g{i}" for i in range(6)]
    np.testing.assert_allclose(
        out[["proba_no", "proba_yes"]], clf.predict_proba(X.head(6)), rtol=1e-6
    )
    # An unnamed index (pandas' "__index_level_0__") is not a feature.
    X.head(6).set_axis(range(10, 16)).to_parquet(tmp_path / "unnamed.parquet")
    result = run(clf_path, [tmp_path / "unnamed.parquet"], tmp_path / "u.csv")
    assert pd.read_csv(result.output)["id"].tolist() == list(range(6))


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_table_inputs_may_hold_their_columns_in_another_order(tmp_path, sk_models, fmt):
    clf_path, _, X, clf = sk_models
    frame = X.head(6).set_axis([f"g{i}" for i in range(6)]).rename_axis("id")
    first, second = tmp_path / f"first.{fmt}", tmp_path / f"second.{fmt}"
    if fmt == "parquet":
        frame.head(3).reset_index().to_parquet(first, index=False)  # id, a, b, c
        frame.tail(3).to_parquet(second)  # a, b, c, then the index "id"
    else:
        frame.head(3).to_csv(first)
        frame.tail(3)[["c", "a", "b"]].to_csv(second)
    result = run(clf_path, [first, second], tmp_path / "o.csv")
    out = pd.read_csv(result.output)
    assert out["id"].tolist() == [f"g{i}" for i in range(6)]
    np.testing.assert_allclose(
        out[["proba_no", "proba_yes"]], clf.predict_proba(X.head(6)), rtol=1e-6
    )
    other = tmp_path / f"other.{fmt}"
    getattr(frame.rename(columns={"c": "d"}), f"to_{fmt}")(other)
    label = fmt.capitalize() if fmt == "parquet" else "CSV"
    message = (
        rf"The {label} inputs have different columns: compared with \S*first\.{fmt}, "
        rf"\S*other\.{fmt} lacks \['c'\] and has \['d'\] in addition\."
    )
    with pytest.raises(ScoringInputError, match=message):
        run(clf_path, [first, other], tmp_path / "o2.csv")


def test_parquet_input_with_a_repeated_column_name_is_refused(tmp_path, sk_models):
    # A bare KeyError from pyarrow ('Field "a" exists 2 times'). (A CSV's
    # repeated names are told apart as pandas does: a, a.1.)
    clf_path = sk_models[0]
    path = tmp_path / "dup.parquet"
    columns = [pa.array([1.0, 2.0]) for _ in range(4)]
    pq.write_table(pa.table(columns, names=["a", "b", "c", "a"]), path)
    with pytest.raises(ScoringInputError, match=r"more than one column named \['a'\]"):
        run(clf_path, [path, path], tmp_path / "o.csv")


@pytest.mark.parametrize("bad_line", [2, 3])
def test_csv_row_with_a_field_too_many_is_refused(tmp_path, sk_models, bad_line):
    # "-0,5" (a decimal comma) makes 5 fields: pandas would drop the last one
    # (or take the first as an index) and score the row with shifted values.
    clf_path = sk_models[0]
    lines = ["id,a,b,c", "1,0.1,0.2,0.3", "2,0.4,0.1,0.2", "3,0.3,0.3,0.3"]
    lines[bad_line - 1] = f"{bad_line - 1},-0,5,0.1,0.2"
    (tmp_path / "dc.csv").write_text("\n".join(lines) + "\n")
    message = rf"dc.csv: line {bad_line} has 5 fields, but the header has 4"
    with pytest.raises(ScoringInputError, match=message):
        run(clf_path, [tmp_path / "dc.csv"], tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists()


def _exoplanet_folder(folder, n_spectra, aux_text):
    from skestimators.preprocessing import AUX_COLUMNS

    folder.mkdir()
    spectra = np.arange(1, n_spectra * 15 + 1.0).reshape(-1, 5, 3)  # plausible
    np.save(folder / "spectra.npy", spectra)
    (folder / "auxiliary.csv").write_text(
        ",".join(AUX_COLUMNS)
        + "\n"
        + aux_text.replace("R", ",".join("1" * len(AUX_COLUMNS)) + "\n")
    )


def test_exoplanet_auxiliary_rows_are_counted_and_checked(tmp_path):
    from skestimators.scoring._folders import ExoplanetReader

    _exoplanet_folder(tmp_path / "blank", 3, "RRR\n")  # a trailing blank line
    reader = ExoplanetReader(tmp_path / "blank")
    assert reader.n_rows == sum(s.n_rows for s in reader.specs(2)) == 3
    _exoplanet_folder(tmp_path / "short", 3, "RR\n")  # a planet lost
    with pytest.raises(ScoringInputError, match="spectra.npy has 3, auxiliary.csv 2"):
        ExoplanetReader(tmp_path / "short")
    _exoplanet_folder(tmp_path / "shifted", 3, "RR1,1,1,1,1,1\n")
    with pytest.raises(ScoringInputError, match="line 4 has 6 fields"):
        list(ExoplanetReader(tmp_path / "shifted").specs(2))


def test_rescored_chunk_drops_its_stale_invalid_rows(tmp_path, sk_models, monkeypatch):
    clf_path = sk_models[0]
    rows = [f"{i},0.5,0.25,1.0" for i in range(12)]
    rows[5] = "5,0.5,nan,1.0"
    source, out = tmp_path / "in.csv", tmp_path / "o.csv"
    source.write_text("id,a,b,c\n" + "\n".join(rows) + "\n")
    original = score_module.run_chunk
    monkeypatch.setattr(score_module, "run_chunk", _failing_after(2, original))
    with pytest.raises(KeyboardInterrupt):
        run(clf_path, [source], out, chunk_rows=4)
    assert (tmp_path / "o.csv.parts" / "invalid-000001.parquet").exists()
    source.write_text(source.read_text().replace("0.5,nan", "0.5,0.1"))  # fixed
    monkeypatch.setattr(score_module, "run_chunk", original)
    result = run(clf_path, [source], out, chunk_rows=4)
    assert (result.resumed_chunks, result.rescored_chunks) == (1, 1)
    assert result.n_invalid == 0 and not (tmp_path / "o.csv.invalid.csv").exists()
    assert pd.read_csv(out)["proba_yes"].notna().all()


def test_csv_ids_that_pandas_reads_as_missing_are_kept(tmp_path, sk_models):
    clf_path = sk_models[0]
    ids = ["NA", "None", "null", "n/a", "", "ZA"]
    lines = [f"{i},0.1,0.2,0.3" for i in ids]
    lines[1] = "None,NA,0.2,0.3"  # "NA" is still missing in a feature
    (tmp_path / "in.csv").write_text("id,a,b,c\n" + "\n".join(lines) + "\n")
    result = run_invalid(clf_path, [tmp_path / "in.csv"], tmp_path / "o.parquet")
    out = pq.read_table(result.output).to_pydict()
    assert out["id"] == ids
    assert out["proba_yes"][1] is None and result.invalid_preview[0]["id"] == "None"


def test_text_in_a_numeric_column_is_an_invalid_row(tmp_path, sk_models):
    clf_path, _, X, clf = sk_models
    frame = X.head(4).astype({"b": str})
    frame.loc[2, "b"] = "oops"
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")  # b is a string column
    # a categorical (a Parquet dictionary): the whole job failed
    frame.astype({"b": "category"}).to_parquet(tmp_path / "c.parquet")
    for source in ("t.csv", "t.parquet", "c.parquet"):
        result = run_invalid(clf_path, [tmp_path / source], tmp_path / f"{source}.csv")
        out = pd.read_csv(result.output)
        assert result.invalid_preview == [
            {"id": 2, "reason": "text in numeric column 'b'"}
        ]
        assert out["proba_yes"].isna().tolist() == [False, False, True, False]
        np.testing.assert_allclose(
            out.loc[[0, 1, 3], ["proba_no", "proba_yes"]],
            clf.predict_proba(X.iloc[[0, 1, 3]]),
            rtol=1e-6,
        )


def test_one_hot_encoded_text_column_is_kept_as_text(tmp_path):
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.RandomState(0)
    X = pd.DataFrame({"color": rng.choice(["red", "blue"], 40), "size": rng.rand(40)})
    y = (X["color"] == "red").astype(int)
    encode = make_column_transformer(
        (OneHotEncoder(), ["color"]), remainder="passthrough"
    )
    model = make_pipeline(encode, LogisticRegression()).fit(X, y)
    path = skestimators.save(model, tmp_path / "cat.joblib")
    frame = X.astype({"size": str})
    frame.loc[3, "size"] = "oops"  # text in the numeric column: an invalid row
    frame.to_csv(tmp_path / "cat.csv", index=False)
    frame.to_parquet(tmp_path / "cat.parquet")
    for source in ("cat.csv", "cat.parquet"):
        result = run_invalid(path, [tmp_path / source], tmp_path / f"{source}.csv")
        out = pd.read_csv(result.output)
        keep = out.index != 3
        assert [r["id"] for r in result.invalid_preview] == [3]
        np.testing.assert_allclose(
            out.loc[keep, ["proba_0", "proba_1"]],
            model.predict_proba(X[keep]),
            rtol=1e-6,
        )


def test_damaged_parquet_page_names_the_file(tmp_path, table_model):
    # The footer was checked, the pages were not: a raw OSError ("Couldn't
    # deserialize thrift") named no file.
    model_path, X, _ = table_model
    X.to_parquet(tmp_path / "x.parquet", row_group_size=20, compression=None)
    raw = bytearray((tmp_path / "x.parquet").read_bytes())
    raw[4:44] = b"\x13" * 40  # the first page header
    (tmp_path / "x.parquet").write_bytes(bytes(raw))
    with pytest.raises(ScoringInputError, match=r"x\.parquet cannot be read"):
        run(model_path, [tmp_path / "x.parquet"], tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()


def test_text_codes_made_of_digits_stay_text_in_every_csv_chunk(tmp_path):
    # pandas guessed each chunk's types: a chunk holding only "07" and "12"
    # read them as the integers 7 and 12, which the encoder refused (the job
    # failed with chunk_rows=10 and scored with one chunk).
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.RandomState(0)
    X = pd.DataFrame({"code": rng.choice(["A1", "B2", "07", "12"], 80)})
    X["x"] = rng.rand(80)
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["code"]), remainder="passthrough"
    )
    model = make_pipeline(encode, LogisticRegression())
    model.fit(X, X["code"].isin(["07", "12"]).astype(int))
    path = skestimators.save(model, tmp_path / "codes.joblib")
    frame = pd.DataFrame({"code": ["07", "12"] * 5 + ["A1", "07", None, "12"] * 5})
    frame["x"] = rng.rand(30)
    frame.to_csv(tmp_path / "codes.csv", index=False)
    result = run(path, [tmp_path / "codes.csv"], tmp_path / "o.csv", chunk_rows=10)
    assert result.n_invalid == 0
    out = pd.read_csv(result.output)
    np.testing.assert_allclose(
        out[["proba_0", "proba_1"]], model.predict_proba(frame), rtol=1e-6
    )


def test_output_that_is_an_input_or_the_model_is_refused(tmp_path, sk_models):
    clf_path, _, X, _ = sk_models
    data = tmp_path / "data.csv"
    X.to_csv(data, index=False)
    before = data.read_text()
    with pytest.raises(ScoringInputError, match="would overwrite the input"):
        run(clf_path, [data], tmp_path / "." / "data.csv")
    X.to_csv(tmp_path / "o.csv.invalid.csv", index=False)  # o.csv's invalid rows
    with pytest.raises(ScoringInputError, match="would overwrite the input"):
        run(clf_path, [tmp_path / "o.csv.invalid.csv"], tmp_path / "o.csv")
    with pytest.raises(ScoringInputError, match="would overwrite the input"):
        run(clf_path, [data], clf_path, output_format="csv")
    assert data.read_text() == before
    folder = tmp_path / "planets"
    _exoplanet_folder(folder, 3, "RRR")
    with pytest.raises(ScoringInputError, match="inside the input folder"):
        run(clf_path, [folder], folder / "o.csv")
    assert sorted(p.name for p in folder.iterdir()) == ["auxiliary.csv", "spectra.npy"]


def test_id_column_named_like_a_prediction_column_is_refused(tmp_path, sk_models):
    clf_path, _, X, _ = sk_models
    X.head(3).assign(proba_yes=["A", "B", "C"]).to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(ScoringInputError, match="'proba_yes' has the name of a pred"):
        run(clf_path, [tmp_path / "p.csv"], tmp_path / "o.csv", id_column="proba_yes")
    assert not (tmp_path / "o.csv").exists()
    assert not (tmp_path / "o.csv.parts").exists()


@pytest.mark.parametrize("fmt", ["csv", "parquet", "npy"])
def test_every_row_invalid_keeps_the_prediction_columns(tmp_path, sk_models, fmt):
    clf_path, reg_path, _, _ = sk_models
    np.save(tmp_path / "nan.npy", np.full((4, 3), np.nan))
    out = tmp_path / f"o.{fmt}"
    result = run_invalid(reg_path, [tmp_path / "nan.npy"], out, chunk_rows=3)
    assert result.n_invalid == 4
    if fmt == "npy":
        values = np.load(out)
        assert values.shape == (4,) and np.isnan(values).all()
        assert not (tmp_path / "o.ids.npy").exists()
    else:
        frame = pd.read_csv(out) if fmt == "csv" else pd.read_parquet(out)
        assert list(frame.columns) == ["id", "prediction"]
        assert frame["prediction"].isna().all()
    (tmp_path / "nan.csv").write_text("a,b,c\nx,1,2\n1,,3\n")
    result = run_invalid(clf_path, [tmp_path / "nan.csv"], tmp_path / f"c.{fmt}")
    if fmt != "npy":
        frame = pd.read_csv(result.output) if fmt == "csv" else None
        frame = pd.read_parquet(result.output) if frame is None else frame
        assert list(frame.columns) == ["id", "proba_no", "proba_yes"]
    else:
        assert np.load(result.output).shape == (2, 2)


def test_failed_assembly_keeps_the_previous_output_and_invalid_file(
    tmp_path, sk_models, monkeypatch
):
    import errno

    from pyarrow import csv

    _, reg_path, X, _ = sk_models
    np.save(tmp_path / "x.npy", X.to_numpy())
    out = tmp_path / "o.csv"
    out.write_text("old output")
    (tmp_path / "o.csv.invalid.csv").write_text('"id","reason"\n7,"old"\n')

    def disk_full(path, schema):
        open(path, "w").close()
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(csv, "CSVWriter", disk_full)
    with pytest.raises(OSError, match="No space left"):
        run(reg_path, [tmp_path / "x.npy"], out, chunk_rows=20)
    assert out.read_text() == "old output"
    assert (tmp_path / "o.csv.invalid.csv").read_text() == '"id","reason"\n7,"old"\n'
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_csv_with_cr_line_endings_is_read(tmp_path, sk_models):
    clf_path, _, X, clf = sk_models
    text = X.head(3).to_csv(index=False, lineterminator="\r")
    (tmp_path / "cr.csv").write_text(text, newline="")
    result = run(clf_path, [tmp_path / "cr.csv"], tmp_path / "o.parquet")
    assert result.n_rows == 3


def test_undecodable_id_column_is_a_scoring_input_error(tmp_path, sk_models):
    clf_path = sk_models[0]
    (tmp_path / "lat.csv").write_bytes(b"id,a,b,c\nMontr\xe9al,0.1,0.2,0.3\n")
    with pytest.raises(ScoringInputError, match="lat.csv is not UTF-8 text"):
        run(clf_path, [tmp_path / "lat.csv"], tmp_path / "o.csv")


def test_progress_total_is_the_rows_scored(tmp_path, sk_models, monkeypatch):
    import tqdm.auto

    seen = {}

    class Recording(tqdm.auto.tqdm):
        def close(self):
            seen["total"] = self.total
            super().close()

    monkeypatch.setattr(tqdm.auto, "tqdm", Recording)
    clf_path = sk_models[0]
    text = 'a,b,c\n1,2,3\n\n\n4,5,6\n"7\n\n\n",8,9\n\n'  # blank lines, a quoted newline
    (tmp_path / "blank.csv").write_text(text)
    result = score(clf_path, [tmp_path / "blank.csv"], tmp_path / "o.csv", chunk_rows=2)
    assert result.n_rows == 3 and seen["total"] == 3


def test_npy_output_without_npy_suffix_names_its_ids_file(tmp_path, sk_models):
    clf_path, _, X, clf = sk_models
    X.head(2).assign(id=["r1", "r2"]).to_csv(tmp_path / "ids.csv", index=False)
    out = tmp_path / "predictions"
    run(clf_path, [tmp_path / "ids.csv"], out, output_format="npy")
    assert np.load(tmp_path / "predictions.ids.npy").tolist() == ["r1", "r2"]
    with open(out, "rb") as f:
        assert np.load(f).shape == (2, 2)


def test_wide_header_checks_compare_each_column_once(tmp_path):
    from skestimators.scoring._inputs import check_layout

    calls = {"n": 0}

    class Name(str):  # counts comparisons: list membership would be quadratic
        __hash__ = str.__hash__

        def __eq__(self, other):
            calls["n"] += 1
            return str.__eq__(self, other)

    n = 400
    names = [f"w{i}" for i in range(n)]
    layout = {"kind": "array", "exact": True, "inputs": {"X": {"shape": [n]}}}
    expected = json.loads(json.dumps(layout))
    expected["inputs"]["X"]["columns"] = [Name(c) for c in names]
    provided = json.loads(json.dumps(layout))
    provided["inputs"]["X"]["columns"] = [Name(c) for c in names]
    check_layout(expected, provided)
    pd.DataFrame(np.zeros((2, n)), columns=names).to_csv(tmp_path / "w.csv")
    from skestimators.scoring._inputs import open_input

    open_input([tmp_path / "w.csv"], expected=expected)
    assert calls["n"] < 10 * n


def test_multi_output_classes_of_different_lengths_go_to_npy(tmp_path):
    # The early text-label check ravelled ragged classes_: NumPy's
    # "inhomogeneous shape" for a multi-output forest.
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    y = np.column_stack([X["a"] > 0, np.digitize(X["b"], [-0.5, 0.5])])
    forest = RandomForestClassifier(5, random_state=0).fit(X, y)
    path = skestimators.save(forest, tmp_path / "forest.joblib", format="pickle")
    X.to_csv(tmp_path / "x.csv", index=False)
    run(path, [tmp_path / "x.csv"], tmp_path / "out.npy", method="predict")
    assert np.load(tmp_path / "out.npy").shape == (60, 2)


def test_text_labels_to_npy_are_refused_before_scoring(tmp_path, table_model):
    # Every chunk was scored before assembly refused the text labels, and the
    # parts left behind made every rerun fail the same way.
    path, X, _ = table_model
    X.to_csv(tmp_path / "x.csv", index=False)
    out = tmp_path / "labels.npy"
    with pytest.raises(ScoringInputError, match="text labels.*predict_proba"):
        run(path, [tmp_path / "x.csv"], out, method="predict")
    assert not out.exists() and not (tmp_path / "labels.npy.parts").exists()
    result = run(path, [tmp_path / "x.csv"], out, method="predict_proba")
    assert result.n_rows == len(X) and np.load(out).shape == (len(X), 2)


# -- rows a model refuses, text columns, arguments, long names -----------------------
@pytest.mark.parametrize(
    "first, invalid",
    [("imputer", {4: "infinite value"}), ("scaler", {1: "NaN", 4: "infinite value"})],
)
def test_nonfinite_rows_do_not_depend_on_the_chunk(tmp_path, first, invalid):
    # A model taking NaN (an imputer first) refused a chunk holding an inf
    # row, and then every NaN row of that chunk was left out too: a NaN row
    # was scored with chunk_rows=3 and null with chunk_rows=6.
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression

    rng = np.random.RandomState(0)
    X = rng.normal(size=(50, 2))
    step = SimpleImputer() if first == "imputer" else StandardScaler()
    model = make_pipeline(step, LinearRegression()).fit(X, X[:, 0])
    path = skestimators.save(model, tmp_path / "m.joblib", format="pickle")
    T = rng.normal(size=(6, 2))
    T[1, 1], T[4, 0] = np.nan, np.inf
    np.save(tmp_path / "T.npy", T)
    scored = [i for i in range(6) if i not in invalid]
    for chunk_rows in (3, 6):
        out = tmp_path / f"o{chunk_rows}.parquet"
        result = run_invalid(path, [tmp_path / "T.npy"], out, chunk_rows=chunk_rows)
        frame = pd.read_parquet(out)
        assert np.flatnonzero(frame["prediction"].isna()).tolist() == sorted(invalid)
        np.testing.assert_allclose(
            frame["prediction"][scored], model.predict(T[scored]), rtol=1e-6
        )
        reasons = {r["id"]: r["reason"] for r in result.invalid_preview}
        assert reasons.keys() == invalid.keys()
        assert all(invalid[i] in reasons[i] for i in invalid)


def test_encoder_first_in_a_pipeline_takes_its_columns_as_text(tmp_path):
    # Saved without training data, a Pipeline starting with a OneHotEncoder
    # had its text columns read as numbers: every row was invalid.
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.RandomState(0)
    X = pd.DataFrame(
        {"color": rng.choice(["red", "blue"], 40), "size": rng.randint(1, 4, 40)}
    )
    y = (X["color"] == "red").astype(int)
    model = make_pipeline(OneHotEncoder(), LogisticRegression()).fit(X, y)
    path = skestimators.save(model, tmp_path / "ohe.skops")
    assert read_input(path)["dtype"] is None  # nothing says which column is text
    frame = X.astype({"size": str})
    frame.loc[3, "size"] = "oops"  # text in a column encoded as numbers
    frame.to_csv(tmp_path / "cat.csv", index=False)
    frame.to_parquet(tmp_path / "cat.parquet")
    keep = X.index != 3
    for source in ("cat.csv", "cat.parquet"):
        result = run_invalid(path, [tmp_path / source], tmp_path / f"{source}.csv")
        assert result.invalid_preview == [
            {"id": 3, "reason": "text in numeric column 'size'"}
        ]
        out = pd.read_csv(result.output)
        np.testing.assert_allclose(
            out.loc[keep, ["proba_0", "proba_1"]],
            model.predict_proba(X[keep]),
            rtol=1e-6,
        )


def read_input(path):
    return skestimators.read_metadata(path)["input"]["inputs"]["X"]


def _color_codes(X):
    """Numbers from a text column 'color' and a numeric column 'size'."""
    return np.column_stack([X["color"].str.len(), X["size"].astype(float)])


@pytest.mark.parametrize("kind", ["int and float", "text and float"])
def test_training_data_of_mixed_dtypes_keeps_bad_rows_apart(tmp_path, kind):
    # Training data of int and float columns was recorded as dtype "mixed",
    # which turned the text check off: one bad cell failed the whole job.
    from sklearn.linear_model import LinearRegression
    from sklearn.preprocessing import FunctionTransformer

    rng = np.random.RandomState(0)
    if kind == "int and float":
        X = pd.DataFrame({"age": np.arange(20), "size": rng.rand(20)})
        model = LinearRegression()
    else:  # text the model reads without an encoder: known from the dtypes only
        X = pd.DataFrame(
            {"color": rng.choice(["red", "blue"], 20), "size": rng.rand(20)}
        )
        model = make_pipeline(FunctionTransformer(_color_codes), LinearRegression())
    model.fit(X, rng.rand(20))
    path = skestimators.save(
        model, tmp_path / "m.joblib", training_data=(X,), format="pickle"
    )
    assert read_input(path)["dtypes"] == [str(t) for t in X.dtypes]
    frame = X.astype({"size": object})
    frame.loc[2, "size"] = "n/a?"
    frame.to_csv(tmp_path / "bad.csv", index=False)
    result = run_invalid(path, [tmp_path / "bad.csv"], tmp_path / "o.csv")
    assert result.invalid_preview == [
        {"id": 2, "reason": "text in numeric column 'size'"}
    ]
    out = pd.read_csv(result.output)
    keep = X.index != 2
    np.testing.assert_allclose(
        out.loc[keep, "prediction"], model.predict(X[keep]), rtol=1e-6
    )


def test_sidecar_without_column_dtypes_passes_text_through(tmp_path):
    # A sidecar written before the dtypes of each column were recorded says
    # only "mixed", which may hide a text column the model reads without an
    # encoder: its columns are not checked for text (the model reads them).
    from sklearn.linear_model import LinearRegression
    from sklearn.preprocessing import FunctionTransformer

    rng = np.random.RandomState(0)
    X = pd.DataFrame({"color": rng.choice(["red", "blue"], 20), "size": rng.rand(20)})
    model = make_pipeline(FunctionTransformer(_color_codes), LinearRegression())
    model.fit(X, rng.rand(20))
    path = skestimators.save(
        model, tmp_path / "m.joblib", training_data=(X,), format="pickle"
    )
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    del meta["input"]["inputs"]["X"]["dtypes"]
    assert meta["input"]["inputs"]["X"]["dtype"] == "mixed"
    side.write_text(json.dumps(meta))
    X.to_csv(tmp_path / "in.csv", index=False)
    result = run(path, [tmp_path / "in.csv"], tmp_path / "o.csv")
    assert result.n_invalid == 0
    out = pd.read_csv(result.output)
    np.testing.assert_allclose(out["prediction"], model.predict(X), rtol=1e-6)


@pytest.mark.parametrize("as_path", [False, True])
def test_one_input_may_be_given_alone(tmp_path, sk_models, as_path):
    # A single path was iterated character by character ("." became an input
    # folder holding the output).
    _, reg_path, X, _ = sk_models
    np.save(tmp_path / "X.npy", X.to_numpy())
    source = tmp_path / "X.npy"
    result = run(reg_path, source if as_path else str(source), tmp_path / "o.csv")
    assert result.n_rows == len(X) and result.n_invalid == 0


@pytest.mark.parametrize(
    "arguments, name",
    [
        ({"chunk_rows": -1}, "chunk_rows"),
        ({"chunk_rows": 0}, "chunk_rows"),
        ({"chunk_rows": 2.5}, "chunk_rows"),
        ({"chunk_rows": "10"}, "chunk_rows"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"n_workers": 0}, "n_workers"),
    ],
)
def test_bad_chunk_and_batch_sizes_are_refused_before_writing(
    tmp_path, sk_models, arguments, name
):
    # chunk_rows=-1 said the input held no rows; 2.5 failed with a bare
    # TypeError after writing a parts folder that then blocked the next run.
    _, reg_path, X, _ = sk_models
    np.save(tmp_path / "X.npy", X.to_numpy())
    out = tmp_path / "o.parquet"
    with pytest.raises(ValueError, match=f"'{name}' parameter of score"):
        run(reg_path, [tmp_path / "X.npy"], out, **arguments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X.npy"]
    assert run(reg_path, [tmp_path / "X.npy"], out).n_rows == len(X)


def test_output_names_up_to_the_longest_legal_one(tmp_path, sk_models):
    # The lock owner's temporary name added ~20 bytes to the output's name,
    # and <output>.invalid.csv 12: a legal name of 235 bytes or more failed.
    clf_path, _, X, clf = sk_models
    frame = X.head(6).copy()
    frame.loc[2, "a"] = np.nan
    frame.to_csv(tmp_path / "in.csv", index=False)
    for name in ("é" * 121 + ".csv", "o" * 251 + ".csv"):  # 246 and 255 bytes
        out = tmp_path / name
        result = run_invalid(clf_path, [tmp_path / "in.csv"], out)
        assert result.output == out and result.n_invalid == 1
        assert len(os.fsencode(result.invalid_path.name)) <= 255
        assert pd.read_csv(result.invalid_path)["id"].tolist() == [2]
        assert pd.read_csv(out)["proba_yes"].notna().sum() == 5
    names = [p.name for p in tmp_path.iterdir()]
    assert not [n for n in names if n.endswith(".parts") or ".owner" in n]


@pytest.mark.parametrize("character", ["m", "é", "模", "😀"])
def test_companion_names_stay_legal_and_distinct(character):
    from skestimators.scoring._formats import companion_path, ids_path

    size = len(character.encode())
    for n_bytes in range(200, 256):
        output = f"out/{character * ((n_bytes - 4) // size)}.npy"
        for suffix in (".lock", ".lock.owner", ".parts", ".invalid.csv"):
            companion = companion_path(output, suffix)
            assert len(os.fsencode(companion.name)) <= 255
            assert companion.parent.name == "out" and companion.name.endswith(suffix)
            if len(os.fsencode(output)) - 4 + len(suffix) <= 255:
                assert companion.as_posix() == output + suffix  # short: as documented
        assert len(os.fsencode(ids_path(output).name)) <= 255
    # Two long names that differ only at their end keep distinct companions.
    a, b = "x" * 250 + "a.csv", "x" * 250 + "b.csv"
    assert companion_path(a, ".parts") != companion_path(b, ".parts")
