"""``score``: stream input files through a saved model into one output file."""

from __future__ import annotations

import os
import pickle
import time
import warnings
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path

from sklearn.utils._param_validation import Interval, validate_params

from .._io import (
    ModelFileError,
    file_sha256,
    input_layout,
    load,
    output_lock,
    read_metadata,
    sidecar_path,
)
from .._stack import caller_stacklevel
from ._chunks import (
    check_id_name,
    chunk_fingerprint,
    model_columns,
    prepare_model,
    resolve_method,
    run_chunk,
)
from ._formats import ids_path, invalid_path, npy_refusal
from ._inputs import check_output, input_kind, open_input, text_columns
from ._readers import (
    ROW_POSITION,
    ScoringInputError,
    _expected_shape,
    auto_chunk_rows,
)
from ._writer import FORMATS, PartsWriter

__all__ = ["InvalidRowsWarning", "ScoreResult", "score"]


class InvalidRowsWarning(UserWarning):
    """Some input rows could not be scored (NaN values, unreadable images).

    The other rows are still scored; the invalid ones are listed, with the
    reason, in ``<output>.invalid.csv``.

    Examples
    --------
    >>> import warnings
    >>> from skestimators.scoring import InvalidRowsWarning
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", InvalidRowsWarning)  # fail on any bad row
    ...     issubclass(InvalidRowsWarning, UserWarning)
    True
    """


@dataclass
class ScoreResult:
    """What a scoring job wrote.

    Attributes
    ----------
    output : pathlib.Path
        The output file.
    n_rows : int
        Rows in the output (every input row, scored or not).
    n_invalid : int
        Rows that could not be scored (null predictions); listed with the
        reason in :attr:`invalid_path`.
    invalid_path : pathlib.Path or None
        ``<output>.invalid.csv`` when there are invalid rows.
    invalid_preview : list of dict
        The first invalid rows (id and reason).
    n_chunks : int
        Chunks of the job.
    resumed_chunks : int
        Chunks found already scored by an earlier, interrupted run, whose
        input is unchanged (same content fingerprint); not scored again.
    rescored_chunks : int
        Chunks an earlier run had scored whose input changed since (their
        content fingerprint differs); scored again.
    seconds : float
        Wall time of this run.
    id_source : str
        Where the output's ids come from: ``"row position"`` (the input has
        no ids; rows are numbered from 0), ``"column 'NAME'"`` of a table,
        ``"column 'id' of targets.csv"`` of an exoplanet folder, or
        ``"image file stem"`` (``"pixel position"`` for rasters, mapped
        into a GeoTIFF). Parquet outputs hold it in their schema
        metadata (key ``id_source``).

    Examples
    --------
    >>> from pathlib import Path
    >>> from skestimators.scoring import ScoreResult
    >>> result = ScoreResult(Path("scores.parquet"), n_rows=1000, seconds=2.0)
    >>> result.n_invalid, result.rows_per_second, result.id_source
    (0, 500.0, 'row position')
    """

    output: Path
    n_rows: int
    n_invalid: int = 0
    invalid_path: Path | None = None
    invalid_preview: list = field(default_factory=list)
    n_chunks: int = 0
    resumed_chunks: int = 0
    rescored_chunks: int = 0
    seconds: float = 0.0
    id_source: str = ROW_POSITION

    @property
    def rows_per_second(self) -> float:
        """Rows of the output per second of this run."""
        return self.n_rows / self.seconds if self.seconds > 0 else float("nan")


def _output_format(output: Path, output_format):
    if output_format is not None:
        return output_format
    suffix = output.suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    if suffix in ("tif", "tiff"):
        return "tif"
    raise ScoringInputError(
        f"Cannot tell the output format from {output.name}; name it .parquet, "
        ".csv, .npy (or .tif for rasters), or give the format."
    )


def _input_layout(metadata, model, estimator):
    """The sidecar's ``input`` entry, checked: what the model was trained on;
    without a sidecar (trusted), the layout the fitted model records."""
    if metadata is None:
        return input_layout(estimator)
    layout = metadata.get("input")
    if layout is None:
        return None
    inputs = layout.get("inputs") if isinstance(layout, dict) else None
    well_formed = (
        isinstance(inputs, dict)
        and layout.get("kind") in ("array", "named")
        and all(isinstance(entry, dict) for entry in inputs.values())
    )
    if not well_formed:
        raise ModelFileError(
            f"The sidecar of {model} has a damaged 'input' entry (it says what "
            "the model was trained on); save the model again."
        )
    return layout


#: The crop of image folders whose model records none: ``load_galaxy_zoo``'s.
_DEFAULT_CROP = 207


def _image_crop(crop, metadata, model, kind):
    """The crop to read image folders with, and whether images already of
    the model's size are read whole (``crop="auto"``)."""
    if crop != "auto":
        return crop, False
    recorded = (metadata or {}).get("crop", "unknown")
    if recorded != "unknown":
        return recorded, True
    if kind == "images":
        warnings.warn(
            f"{model.name} does not record the crop its training images were "
            f"read with: images not already of its size are cropped to "
            f"{_DEFAULT_CROP} px (load_galaxy_zoo's) before resizing. Give the "
            "crop (--crop, or crop= here), or save the model with "
            "skestimators.save(..., crop=<the loader's crop>).",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )
    return _DEFAULT_CROP, True


def _load_model(path: Path, trust: bool, trusted):
    """``load``, naming the file when it unpickles into an error, not a model."""
    try:
        return load(path, trust=trust, trusted=trusted)
    except (KeyError, IndexError, AttributeError, TypeError, EOFError) as exc:
        raise ScoringInputError(
            f"{path} is not a readable model file ({type(exc).__name__}: {exc})."
        ) from exc
    except pickle.UnpicklingError as exc:
        raise ScoringInputError(f"{path} is not a readable model file: {exc}") from exc


def _stat(path: Path):
    """What identifies an input in the job: its path and size. Not its
    modification time: a copy or a ``touch`` leaves the content as it was, and
    each chunk's content fingerprint finds the chunks that did change."""
    return [str(path.resolve()), path.stat().st_size]


@validate_params(
    {
        "chunk_rows": [Interval(Integral, 1, None, closed="left"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "n_workers": [Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def score(
    model,
    inputs,
    output,
    *,
    output_format: str | None = None,
    chunk_rows: int | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    id_column: str | None = None,
    method: str = "auto",
    scheduler=None,
    n_workers: int = 2,
    crop: int | str | None = "auto",
    window: int | None = None,
    restart: bool = False,
    trust: bool = False,
    trusted: list | None = None,
    progress: bool = True,
) -> ScoreResult:
    """Score input files with a saved model, in chunks, into one output file.

    Rows are read, predicted and written one chunk at a time, so memory does
    not grow with the input. Each finished chunk is kept in
    ``<output>.parts/`` with a manifest: a run that was killed and is started
    again with the same arguments skips the chunks already done, unless
    their input changed: the manifest holds a content fingerprint (xxh3-128)
    of each chunk's input, and chunks whose input no longer matches are
    scored again (:attr:`ScoreResult.rescored_chunks`). Only one run at a
    time writes an output: a run holds an exclusive lock on
    ``<output>.lock`` from start to end, and a second run on the same output
    fails at once with :class:`OutputLockedError`. The output and its
    invalid-rows file are assembled in temporary files and renamed into
    place only when every chunk is scored and both are complete. Rows
    holding NaN or infinite values that the model refuses (all of them for
    a model that does not take NaN; for one that does or may, such as a
    Pipeline starting with an imputer or a ColumnTransformer, the rows it
    still refuses and those in which no value at all is observed), text in a column
    the model takes as numbers, and unreadable images are not scored: their
    predictions are null and they are listed, with the reason, in
    ``<output>.invalid.csv``. An output name too long to take these
    suffixes gets them after a shortened name and a hash of the full one.

    The output's first column holds the input's own ids, so that it can be
    joined to the input's targets: the ``id`` column of ``targets.csv`` for
    an exoplanet folder (as :func:`~skestimators.datasets.load_exoplanet`
    indexes the planets), ``id_column`` or else a column named ``id`` for a
    table, the file stems (GalaxyIDs) for an image folder. Only an input
    without ids (``.npy`` arrays, tables without id column, exoplanet folders
    without ``targets.csv``) gets its row positions, numbered from 0; where
    the ids come from is :attr:`ScoreResult.id_source`, also stored in the
    schema metadata of Parquet outputs.

    Parameters
    ----------
    model : str or path-like
        A model written by :func:`skestimators.save`.
    inputs : str, path-like or sequence of str or path-like
        One input, or several read as one stream of rows: ``.npy`` arrays
        (read through memory maps), ``.parquet`` or ``.csv`` tables, one
        exoplanet folder (``spectra.npy`` + ``auxiliary.csv``, see
        :func:`~skestimators.datasets.load_exoplanet`), one folder of
        ``<GalaxyID>.jpg`` images (see
        :func:`~skestimators.datasets.load_galaxy_zoo`), or GeoTIFF rasters
        (one per time step; mapped by
        :func:`~skestimators.mapping.predict_raster` into a GeoTIFF).
    output : str or path-like
        The output file.
    output_format : {"parquet", "csv", "npy"}, default=None
        Default: from the suffix of ``output``. Parquet and CSV hold an id
        column (``id``, ``id_column`` or ``GalaxyID``) and one column per
        prediction (``proba_<class or target>`` for classifiers, the target
        names or ``prediction`` for regressors). ``.npy`` holds the
        predictions as float64 in input order, and the ids in
        ``<stem>.ids.npy`` (``<output>.ids.npy`` for a name not ending in
        ``.npy``) when they are not the row positions. When no row could be
        scored, the prediction columns are named from the model and null.
    chunk_rows : int, default=None
        Rows per chunk. Default: about 32 MB of input per chunk (at most
        65,536 rows). For rasters: output rows per chunk (default 16).
    batch_size : int, default=None
        Samples per forward pass of the networks (more, up to 1024, while a
        pass holds under 2**20 input values); default: the model's. Lower it
        when a GPU runs out of memory on large images.
    device : str, default=None
        Device of the networks (``"cpu"``, ``"cuda"``, ...); default: the
        one the model loads on (the CPU when no GPU is available).
    id_column : str, default=None
        Column of a Parquet or CSV input holding row ids; it is copied to
        the output as written (CSV ids such as ``NA`` or ``007`` are kept)
        and not passed to the model; it may not have the name of a
        prediction column. Default: the column named ``id`` if the input has
        one (passed to the model too only if the model was trained on a
        column of that name), else the row positions.
    method : {"auto", "predict", "predict_proba"}, default="auto"
        ``"auto"`` uses ``predict_proba`` when the model has it.
    scheduler : str, distributed.Client or "local", default=None
        Score on a Dask cluster: a scheduler address, a Client, or
        ``"local"`` for a LocalCluster of ``n_workers`` processes. Workers
        load the model once each and write their chunks to the parts folder,
        which they must see (a shared file system).
    n_workers : int, default=2
        Workers of the ``"local"`` cluster.
    crop : int, None or "auto", default="auto"
        Centre crop of images before resizing (image folders); the size is
        the one the model was trained on. With None, images must be square:
        others are listed as invalid rows rather than stretched. ``"auto"``:
        the crop the model file records (``save(..., crop=)``), else 207
        (``load_galaxy_zoo``'s) with a warning; images already of the
        model's size are then read whole.
    window : int, default=None
        Patch side for rasters; default: from the model's expected input.
    restart : bool, default=False
        Discard an unfinished run with other settings found in the parts
        folder instead of refusing to start.
    trust : bool, default=False
        Load a model without sidecar, see :func:`skestimators.load`.
    trusted : list of str, default=None
        Types a safe-format model file may hold besides the default-trusted
        ones (``["mypackage.MyNet"]``), see :func:`skestimators.load`.
    progress : bool, default=True
        Show a progress bar (rows and rows/s) on a terminal.

    Returns
    -------
    result : ScoreResult
        Rows written, invalid rows, timings.

    Warns
    -----
    InvalidRowsWarning
        If some rows could not be scored.

    Raises
    ------
    ValueError
        If ``chunk_rows``, ``batch_size`` or ``n_workers`` is not an integer
        of at least 1 (or None where allowed); raised before anything is
        written.
    ScoringInputError
        If an input is missing, unreadable, or does not match the input the
        model expects (shape, named inputs, columns); if a CSV row has more
        fields than the header (the error names its line); if the output
        would overwrite an input or the model, or lies inside an input
        folder.
    ResumeConflictError
        If ``<output>.parts`` holds an unfinished run with other settings.
    OutputLockedError
        If another run is writing ``output``.

    See Also
    --------
    skestimators.save : Write a model with the sidecar this function checks.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np, pandas as pd
    >>> from sklearn.linear_model import LinearRegression
    >>> import skestimators
    >>> from skestimators.scoring import score
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> X = np.arange(10.0).reshape(5, 2)
    >>> _ = skestimators.save(LinearRegression().fit(X, X.sum(1)), folder / "m.joblib")
    >>> np.save(folder / "X.npy", X)
    >>> result = score(folder / "m.joblib", [folder / "X.npy"], folder / "out.parquet",
    ...                chunk_rows=2, progress=False)
    >>> pd.read_parquet(result.output).round(6).to_dict("list")
    {'id': [0, 1, 2, 3, 4], 'prediction': [1.0, 5.0, 9.0, 13.0, 17.0]}
    """
    start = time.perf_counter()
    model, output = Path(os.fspath(model)), Path(os.fspath(output))
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    inputs = [Path(os.fspath(p)) for p in inputs]
    kind = input_kind(inputs)  # reads folders, may open a GeoTIFF: once
    check_output(
        [output, invalid_path(output), ids_path(output)],
        [model, sidecar_path(model)],
        inputs,
    )
    with output_lock(output):
        metadata = None
        if not trust or sidecar_path(model).exists():
            metadata = read_metadata(model)
        estimator = prepare_model(
            _load_model(model, trust, trusted), device, batch_size
        )
        expected = _input_layout(metadata, model, estimator)
        fmt = _output_format(output, output_format)
        crop, whole = _image_crop(crop, metadata, model, kind)
        if kind == "raster":
            return _score_raster(
                estimator,
                inputs,
                output,
                fmt,
                expected,
                window=window,
                chunk_rows=chunk_rows,
                batch_size=batch_size,
                start=start,
            )
        if fmt == "tif":
            raise ScoringInputError("GeoTIFF output is for raster inputs only.")
        reader = open_input(
            inputs,
            expected=expected,
            id_column=id_column,
            crop=crop,
            whole_at_size=whole,
            text_columns=text_columns(estimator),
        )
        if reader.n_rows == 0 and reader.rows_exact:
            raise ScoringInputError(f"{', '.join(map(str, inputs))} holds no rows.")
        method = resolve_method(estimator, method)
        refusal = npy_refusal(estimator, method) if fmt == "npy" else None
        if refusal is not None:
            raise ScoringInputError(refusal)
        columns = model_columns(estimator, method)
        check_id_name(reader.id_name, columns)
        chunk_rows = chunk_rows or auto_chunk_rows(reader.row_bytes)
        sha = metadata["sha256"] if metadata else file_sha256(model)
        job = {
            "model_sha256": sha,
            "inputs": [_stat(p) for p in reader.paths],
            "chunk_rows": int(chunk_rows),
            "id_column": id_column,
            "id_source": reader.id_source,
            "method": method,
            "crop": crop,
            "whole_at_size": whole,
        }
        writer = PartsWriter(output, fmt, job, restart=restart)
        resume = _Resume(writer)
        specs = reader.specs(chunk_rows)
        options = {"method": method, "id_name": reader.id_name}
        from tqdm.auto import tqdm

        with (
            writer.naming_a_full_disk(),
            tqdm(
                total=reader.n_rows,
                initial=writer.rows_done,
                unit="rows",
                unit_scale=True,
                desc=f"scoring {output.name}",
                disable=None if progress else True,
                smoothing=0.1,
                dynamic_ncols=True,
            ) as bar,
        ):
            if scheduler is None:
                n_chunks = _run_local(estimator, specs, resume, bar, options)
            else:
                from ._dask import run_dask

                model_key = (
                    str(model.resolve()),
                    sha,
                    trust,
                    trusted,
                    device,
                    batch_size,
                )
                n_chunks = run_dask(
                    scheduler, n_workers, model_key, specs, resume, bar, options
                )
            if bar.total != writer.rows_done:  # CSV rows are estimated
                bar.total = writer.rows_done
                bar.refresh()
        if writer.rows_done == 0:  # lines, but no rows (a header, blank lines)
            writer.discard()
            raise ScoringInputError(f"{', '.join(map(str, inputs))} holds no rows.")
        if reader.id_source != ROW_POSITION:
            writer.warn_repeated_ids(n_chunks, reader.id_name, reader.id_source)
        with writer.naming_a_full_disk():
            summary = writer.assemble(n_chunks, columns)
        n_invalid = summary["invalid"]
        if n_invalid:
            ids = [next(iter(r.values())) for r in summary["invalid_preview"]]
            warnings.warn(
                f"{n_invalid} row(s) could not be scored (null predictions), e.g. ids "
                f"{ids[:5]}; all are listed in {writer.invalid_path}.",
                InvalidRowsWarning,
                stacklevel=caller_stacklevel(),
            )
        return ScoreResult(
            output=output,
            n_rows=summary["rows"],
            n_invalid=n_invalid,
            invalid_path=writer.invalid_path if n_invalid else None,
            invalid_preview=summary["invalid_preview"],
            n_chunks=n_chunks,
            resumed_chunks=resume.resumed,
            rescored_chunks=resume.rescored,
            seconds=time.perf_counter() - start,
            id_source=reader.id_source,
        )


class _Resume:
    """Which chunks a run skips: those done whose input is unchanged.

    A chunk the manifest records as done is loaded and fingerprinted again;
    it is skipped only if its fingerprint is the recorded one.
    """

    def __init__(self, writer):
        self.writer = writer
        self.resumed = 0
        self.rescored = 0

    def check(self, spec):
        """``(skip, chunk)``: whether to skip ``spec``; the chunk if loaded."""
        if spec.index not in self.writer.done:
            return False, None
        chunk = spec.load()
        if self.writer.unchanged(spec.index, chunk_fingerprint(chunk)):
            self.resumed += 1
            return True, None
        self.rescored += 1
        return False, chunk

    def commit(self, bar, index, n_rows, n_invalid, fingerprint):
        again = index in self.writer.done  # already counted by the progress bar
        self.writer.commit(index, n_rows, n_invalid, fingerprint)
        if not again:
            bar.update(n_rows)


def _run_local(estimator, specs, resume, bar, options) -> int:
    n_chunks = 0
    for spec in specs:
        n_chunks = spec.index + 1
        skip, chunk = resume.check(spec)
        if skip:
            continue
        done = run_chunk(estimator, spec, resume.writer.dir, chunk=chunk, **options)
        resume.commit(bar, *done)
    return n_chunks


def _score_raster(
    estimator, rasters, output, fmt, expected, *, window, chunk_rows, batch_size, start
) -> ScoreResult:
    """Map a model over GeoTIFFs with ``predict_raster``; atomic, not resumable."""
    import rasterio

    from ..mapping import predict_raster

    if fmt != "tif":
        raise ScoringInputError(
            "Raster inputs are written as GeoTIFF: name the output .tif."
        )
    shape = _expected_shape(expected)
    if shape is not None and len(shape) == 4:
        with rasterio.open(rasters[0]) as src:
            bands = src.count
        if expected.get("exact") and (bands != shape[0] or len(rasters) != shape[3]):
            raise ScoringInputError(
                f"The model expects patches of {shape[0]} band(s) over {shape[3]} "
                f"time step(s); got {bands} band(s) in {len(rasters)} raster(s)."
            )
        window = window or int(shape[1])
    if window is None:
        raise ScoringInputError(
            "The patch window of this model is unknown; give it (--window)."
        )
    # Written whole or not at all, by predict_raster itself: a temporary of
    # our own around it made the partial map of a killed run a temporary of
    # a temporary, which no later run recognised to remove.
    predict_raster(
        estimator,
        rasters,
        output,
        window=window,
        chunk_rows=chunk_rows or 16,
        batch_size=batch_size or 1024,
    )
    with rasterio.open(output) as dst:
        n_pixels = dst.width * dst.height
    return ScoreResult(
        output=output,
        n_rows=n_pixels,
        n_chunks=1,
        seconds=time.perf_counter() - start,
        id_source="pixel position",
    )
