"""The ``skestimators`` command line: score, train, info, demo.

A thin layer over the public API (:func:`skestimators.scoring.score`,
:func:`skestimators.save`, :func:`skestimators.recipes.exoplanet_pipeline`,
:func:`skestimators.model_selection.compare_variants`); nothing imports it.

Exit codes: 0 success; 1 error (one line says what; the output file is left
as it was; ``-vv`` shows the traceback); 2 wrong usage; 3 ``score`` wrote the
output but some rows could not be scored (NaN values, unreadable images): they
have null predictions and are listed in ``<OUT>.invalid.csv``, the first ones
on stderr; 4 ``score`` did not start because another run is writing the same
output; 130 ``score`` was interrupted (Ctrl-C): the chunks scored so far are
kept and the same command resumes.
"""

from __future__ import annotations

import json
import logging
import pickle
import sys

import click

from ._version import __version__

EXIT_INVALID_ROWS = 3
EXIT_OUTPUT_LOCKED = 4
EXIT_INTERRUPTED = 130

#: Errors shown as a message (exit code 1) rather than a traceback.
_ERRORS = (
    ValueError,
    OSError,
    RuntimeError,
    ImportError,
    EOFError,
    pickle.UnpicklingError,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="skestimators")
@click.option("-v", "--verbose", count=True, help="More log messages (-vv: debug).")
def main(verbose: int) -> None:
    """scikit-learn estimators for scientific deep learning."""
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _debug() -> bool:
    """Whether ``-vv`` was given: errors then show their traceback."""
    context = click.get_current_context(silent=True)
    return context is not None and context.find_root().params.get("verbose", 0) >= 2


def _message(exc: BaseException) -> str:
    """One line for an error: its message, or its type for unexpected ones."""
    text = " ".join(str(exc).split())
    if isinstance(exc, _ERRORS) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@main.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.argument(
    "inputs", nargs=-1, required=True, type=click.Path(exists=True), metavar="INPUT..."
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Output file (.parquet, .csv, .npy; .tif for rasters).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["parquet", "csv", "npy", "tif"]),
    help="Output format (default: from the output's suffix).",
)
@click.option("--device", help="cpu, cuda, cuda:1, auto (default: as loaded).")
@click.option("--batch-size", type=click.IntRange(1), help="Samples per forward pass.")
@click.option(
    "--chunk-rows",
    type=click.IntRange(1),
    help="Rows per chunk (default: ~32 MB of input).",
)
@click.option("--id-column", help="Column of a Parquet/CSV input holding row ids.")
@click.option(
    "--method",
    type=click.Choice(["auto", "predict", "predict_proba"]),
    default="auto",
    show_default=True,
    help="auto: predict_proba when the model has it.",
)
@click.option("--dask", "use_dask", is_flag=True, help="Score on a local Dask cluster.")
@click.option("--scheduler", metavar="ADDRESS", help="Score on this Dask scheduler.")
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=2,
    show_default=True,
    help="Workers of the local Dask cluster.",
)
@click.option("--window", type=click.IntRange(1), help="Patch side for rasters.")
@click.option(
    "--crop",
    type=click.IntRange(1),
    default=207,
    show_default=True,
    help="Centre crop of images before resizing.",
)
@click.option(
    "--restart", is_flag=True, help="Discard an unfinished run with other settings."
)
@click.option(
    "--trust", is_flag=True, help="Load a model without sidecar (no integrity check)."
)
@click.option("--progress/--no-progress", default=True, show_default=True)
def score(
    model,
    inputs,
    output,
    output_format,
    device,
    batch_size,
    chunk_rows,
    id_column,
    method,
    use_dask,
    scheduler,
    workers,
    window,
    crop,
    restart,
    trust,
    progress,
):
    """Score INPUT files with MODEL into OUTPUT, in chunks.

    INPUT: .npy arrays, .parquet or .csv tables, an exoplanet folder
    (spectra.npy + auxiliary.csv), a folder of <GalaxyID>.jpg images, or
    GeoTIFF rasters (one per time step; mapped into a GeoTIFF).

    Interrupted runs resume when started again with the same arguments;
    chunks whose input changed since (by content) are scored again. The
    output appears only when complete. One run at a time writes an output.

    \b
    Exit codes:
      0    success
      1    error (one line says what; -vv shows the traceback)
      2    wrong usage
      3    written, but some rows have null predictions (NaN values,
           unreadable images); they are listed in OUTPUT.invalid.csv
      4    another run is writing OUTPUT; nothing was done
      130  interrupted; run the same command again to resume
    """
    import warnings

    from .scoring import InvalidRowsWarning, OutputLockedError
    from .scoring import score as run

    if use_dask and scheduler:
        raise click.UsageError("Give either --dask or --scheduler, not both.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InvalidRowsWarning)  # reported below
            result = run(
                model,
                inputs,
                output,
                output_format=output_format,
                chunk_rows=chunk_rows,
                batch_size=batch_size,
                device=device,
                id_column=id_column,
                method=method,
                scheduler=scheduler or ("local" if use_dask else None),
                n_workers=workers,
                crop=crop,
                window=window,
                restart=restart,
                trust=trust,
                progress=progress,
            )
    except KeyboardInterrupt:
        if _debug():
            raise
        click.echo(
            f"Interrupted: the chunks scored so far are kept in {output}.parts; "
            "run the same command again to resume.",
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    except OutputLockedError as exc:
        if _debug():
            raise
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_OUTPUT_LOCKED)
    except Exception as exc:
        if _debug():
            raise
        raise click.ClickException(_message(exc)) from exc
    notes = []
    if result.resumed_chunks:
        notes.append(f"{result.resumed_chunks} chunk(s) resumed")
    if result.rescored_chunks:
        notes.append(
            f"{result.rescored_chunks} chunk(s) rescored because their input changed"
        )
    click.echo(
        f"Wrote {result.output}: {result.n_rows} rows in {result.seconds:.1f} s "
        f"({', '.join([f'{result.rows_per_second:,.0f} rows/s', *notes])}).",
        err=True,
    )
    if result.n_invalid:
        shown = ", ".join(str(next(iter(r.values()))) for r in result.invalid_preview)
        more = " ..." if result.n_invalid > len(result.invalid_preview) else ""
        click.echo(
            f"Warning: {result.n_invalid} row(s) not scored (NaN or infinite "
            "inputs or predictions, or unreadable rows); "
            f"ids: {shown}{more}. All are listed in {result.invalid_path}.",
            err=True,
        )
        sys.exit(EXIT_INVALID_ROWS)


@main.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--check",
    is_flag=True,
    help="Also verify the SHA-256 and versions; exit 1 on mismatch.",
)
def info(model, check):
    """Print the sidecar of MODEL (versions, hash, expected input, scores)."""
    import warnings

    from ._io import check_integrity, check_versions, read_metadata

    try:
        metadata = read_metadata(model)
        if check:
            check_integrity(model, metadata)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                check_versions(metadata, model)
            for warning in caught:
                click.echo(f"Warning: {warning.message}", err=True)
    except _ERRORS as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(metadata, indent=2))


def _exoplanet_data(data):
    from .datasets import load_exoplanet

    X, y = load_exoplanet(None if data == "builtin" else data)
    if y is None:
        raise click.ClickException(f"{data} has no targets.csv: nothing to train on.")
    return X, y


def _recipe(name):
    try:
        from .recipes import exoplanet_pipeline
    except ImportError as exc:
        raise click.ClickException(
            "The recipes (skestimators.recipes) are not available in this version."
        ) from exc
    recipes = {"exoplanet": exoplanet_pipeline}
    if name not in recipes:
        raise click.ClickException(
            f"Unknown recipe {name!r}; known: {sorted(recipes)}."
        )
    return recipes[name]


def _set_max_epochs(model, epochs):
    """Cap the epochs of every network in ``model`` (a pipeline or an ensemble)."""
    keys = [k for k in model.get_params() if k.endswith("__max_epochs")]
    if not keys:
        raise ValueError(f"{type(model).__name__} has no network with max_epochs.")
    return model.set_params(**dict.fromkeys(keys, epochs))


@main.command()
@click.argument("recipe", type=click.Choice(["exoplanet"]))
@click.argument("data")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Model file to write (.joblib); the sidecar goes next to it.",
)
@click.option("--variant", default="blend", show_default=True, help="Recipe variant.")
@click.option("--random-state", type=int, default=0, show_default=True)
@click.option(
    "--cv",
    "folds",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Cross-validate first with this many folds (scores go to the sidecar).",
)
@click.option(
    "--max-epochs",
    type=click.IntRange(1),
    help="Override the recipe's maximum number of epochs.",
)
@click.option("--device", default="auto", show_default=True)
def train(recipe, data, output, variant, random_state, folds, max_epochs, device):
    """Train RECIPE on DATA (a load_exoplanet folder, or "builtin") and save it."""
    from sklearn.model_selection import cross_validate

    from ._io import save
    from .metrics import multilabel_scorers

    make = _recipe(recipe)
    try:
        X, y = _exoplanet_data(data)
        model = make(variant, random_state=random_state, device=device)
        if max_epochs is not None:
            _set_max_epochs(model, max_epochs)
        scores = None
        if folds > 1:
            cv = cross_validate(model, X, y, cv=folds, scoring=multilabel_scorers(y))
            scores = {k: v for k, v in cv.items() if k.startswith("test_")}
            for name, values in scores.items():
                click.echo(
                    f"{name}: {values.mean():.3f} ± {values.std():.3f}", err=True
                )
        model.fit(X, y)
        path = save(model, output, cv_scores=scores, training_data=(X, y))
    except _ERRORS as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Saved {path} (and {path.name}.json).", err=True)


@main.command()
@click.option(
    "--epochs",
    type=click.IntRange(1),
    default=30,
    show_default=True,
    help="Maximum epochs per fit.",
)
@click.option("--folds", type=click.IntRange(2), default=3, show_default=True)
@click.option("--n-jobs", type=int, default=2, show_default=True)
@click.option("--random-state", type=int, default=0, show_default=True)
def demo(epochs, folds, n_jobs, random_state):
    """Compare exoplanet variants on the bundled data (1-3 minutes on 2 cores)."""
    from .datasets import load_exoplanet
    from .metrics import multilabel_scorers
    from .model_selection import compare_variants, summarize_comparison

    make = _recipe("exoplanet")
    X, y = load_exoplanet()
    names = ("blend", "best", "conv1d", "dense_raw")
    variants = {}
    for name in names:
        model = make(name, random_state=random_state, device="cpu")
        variants[name] = _set_max_epochs(model, epochs)
    click.echo(
        f"Exoplanet water/cloud: {len(X)} planets, {len(variants)} variants, "
        f"{folds}-fold CV, at most {epochs} epochs...",
        err=True,
    )
    results = compare_variants(
        variants,
        X,
        y,
        cv=folds,
        scoring=multilabel_scorers(y),
        n_jobs=n_jobs,
        random_state=random_state,
    )
    click.echo(summarize_comparison(results).to_string())


if __name__ == "__main__":  # pragma: no cover
    main()
