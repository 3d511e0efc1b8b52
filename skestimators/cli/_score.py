"""``skestimators score`` and ``skestimators info``: models applied to files."""

from __future__ import annotations

import json
import sys

import click

from ._common import (
    _ERRORS,
    EXIT_INTERRUPTED,
    EXIT_INVALID_ROWS,
    EXIT_OUTPUT_LOCKED,
    _debug,
    _message,
    _one_line_warnings,
    _stop,
    main,
)


class _Crop(click.ParamType):
    """A crop in pixels (a positive integer), ``none`` for no crop, or
    ``auto`` for the model's."""

    name = "PIXELS|none|auto"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, int):
            return value
        if str(value).strip().lower() in ("none", "auto"):
            return None if str(value).strip().lower() == "none" else "auto"
        try:
            pixels = int(value)
        except ValueError:
            pixels = 0
        if pixels < 1:
            self.fail(
                f"{value!r} is neither a positive number of pixels, 'none' nor 'auto'."
            )
        return pixels


_CROP = _Crop()


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
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    help="Samples per forward pass (more for small samples, up to 1024).",
)
@click.option(
    "--chunk-rows",
    type=click.IntRange(1),
    help="Rows per chunk (default: ~32 MB of input).",
)
@click.option(
    "--id-column",
    help="Column of a Parquet/CSV input holding row ids [default: a column "
    "named id, else row positions].",
)
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
    type=_CROP,
    default="auto",
    show_default=True,
    help="Centre crop of images before resizing, in pixels, or 'none' for the "
    "whole image: the crop of the loader that read the training images. "
    "'auto': the crop the model file records (save(..., crop=)), else 207 "
    "(load_galaxy_zoo's), with a warning; images already of the model's size "
    "are read whole.",
)
@click.option(
    "--restart", is_flag=True, help="Discard an unfinished run with other settings."
)
@click.option(
    "--trust", is_flag=True, help="Load a model without sidecar (no integrity check)."
)
@click.option(
    "--trusted",
    "trusted",
    multiple=True,
    metavar="TYPE",
    help="A type a safe-format model file may hold besides the default-trusted "
    "ones, as module.Class (repeat for several): the types the error of an "
    "untrusted file names.",
)
@click.option(
    "--progress/--no-progress",
    default=True,
    show_default=True,
    help="Show a progress bar over chunks on stderr.",
)
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
    trusted,
    progress,
):
    """Score INPUT files with MODEL into OUTPUT, in chunks.

    INPUT: .npy arrays, .parquet or .csv tables, an exoplanet folder
    (spectra.npy + auxiliary.csv), a folder of <GalaxyID>.jpg images, or
    GeoTIFF rasters (one per time step, given in time order; mapped into a
    GeoTIFF; a warning says when their names number them in another order).

    OUTPUT's first column holds the input's ids: --id-column, else a table
    column named "id"; the "id" column of an exoplanet folder's targets.csv;
    image file stems. Only inputs without ids get row positions (from 0).

    Interrupted runs (tables, arrays, folders; not maps from rasters, which
    are written whole) resume when started again with the same arguments;
    chunks whose input changed since (by content) are scored again. The
    output appears only when complete. One run at a time writes an output.

    \b
    Exit codes:
      0    success
      1    error (one line says what; skestimators -vv score ... shows
           the traceback)
      2    wrong usage
      3    written, but some rows have null predictions (NaN values, text
           in numeric columns, unreadable images); they are listed, with
           the reason, in OUTPUT.invalid.csv
      4    another run is writing OUTPUT; nothing was done
      130  interrupted; run the same command again to resume (a map
           from rasters starts again)
    """
    import warnings

    try:  # half a second of imports: a Ctrl-C here is an interruption too
        from .._io import companion_path
        from ..scoring import InvalidRowsWarning, OutputLockedError
        from ..scoring import score as run
    except KeyboardInterrupt:
        _stop(
            EXIT_INTERRUPTED,
            f"Interrupted before scoring began: {output} was not written.",
        )
    if use_dask and scheduler:
        raise click.UsageError("Give either --dask or --scheduler, not both.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InvalidRowsWarning)  # reported below
            warnings.showwarning = _one_line_warnings()  # versions differ, etc.
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
                trusted=list(trusted) or None,
                progress=progress,
            )
    except KeyboardInterrupt:
        if _debug():
            raise
        parts = companion_path(output, ".parts")  # shortened for a long name
        if parts.is_dir():
            message = (
                f"the chunks scored so far are kept in {parts}; run the same "
                "command again to resume."
            )
        else:  # a map (rasters) keeps no parts: it is written whole or not
            message = f"{output} was not written (any previous file is unchanged)."
        _stop(EXIT_INTERRUPTED, f"Interrupted: {message}")
    except OutputLockedError as exc:
        _stop(EXIT_OUTPUT_LOCKED, f"Error: {exc}")
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
        f"({', '.join([f'{result.rows_per_second:,.0f} rows/s', *notes])}); "
        f"ids: {result.id_source}.",
        err=True,
    )
    if result.n_invalid:
        shown = ", ".join(str(next(iter(r.values()))) for r in result.invalid_preview)
        more = " ..." if result.n_invalid > len(result.invalid_preview) else ""
        click.echo(
            f"Warning: {result.n_invalid} row(s) not scored (NaN, infinite or "
            "text inputs, non-finite predictions, or unreadable rows); "
            f"invalid ids: {shown}{more}. All are listed in {result.invalid_path}.",
            err=True,
        )
        sys.exit(EXIT_INVALID_ROWS)


@main.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--check",
    is_flag=True,
    help="Also verify the SHA-256 and versions and print a verdict on stderr; "
    "exit 1 when the file does not match.",
)
def info(model, check):
    """Print the sidecar of MODEL (versions, hash, expected input, scores).

    The sidecar is the JSON file next to MODEL (MODEL.json; for a name
    too long to take .json, that name shortened with a hash) written by
    skestimators.save and `skestimators train`.
    """
    import warnings

    from .._io import check_integrity, check_versions, read_metadata

    try:
        metadata = read_metadata(model)
    except _ERRORS as exc:
        raise click.ClickException(str(exc)) from exc
    if check:
        try:
            check_integrity(model, metadata)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                check_versions(metadata, model)
        except _ERRORS as exc:
            raise click.ClickException(f"Check failed: {_message(exc)}") from exc
    click.echo(json.dumps(metadata, indent=2))
    if not check:
        return
    for warning in caught:
        click.echo(f"Warning: {warning.message}", err=True)
    if caught:
        verdict = (
            "the versions differ (warning above): it may not load or predict "
            "identically"
        )
    elif not metadata.get("versions"):
        verdict = "its sidecar records no versions to compare with those installed"
    else:
        verdict = "the installed versions match those it was saved with"
    click.echo(
        f"Check {'passed with a warning' if caught else 'passed'}: {model} matches "
        f"the SHA-256 of its sidecar; {verdict}.",
        err=True,
    )
