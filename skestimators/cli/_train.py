"""``skestimators train`` and ``skestimators demo``: fit the exoplanet recipe."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from ._common import (
    _ERRORS,
    EXIT_INTERRUPTED,
    EXIT_OUTPUT_LOCKED,
    EXOPLANET_VARIANTS,
    _debug,
    _message,
    _one_line_warnings,
    _stop,
    _verbosity,
    main,
)


def _exoplanet_data(data):
    from ..datasets import load_exoplanet

    X, y = load_exoplanet(None if data == "builtin" else data)
    if y is None:
        raise click.ClickException(f"{data} has no targets.csv: nothing to train on.")
    return X, y


def _writable_output(ctx, param, value):
    """The ``--output`` path, once its folder is known to exist and be
    writable: checked before training, which may take hours."""
    path = Path(value)
    if not path.name or path.name in (".", ".."):
        raise click.BadParameter(f"{value!r} names no file.", ctx, param)
    folder = path.parent
    if not folder.is_dir():
        raise click.BadParameter(f"folder {str(folder)!r} does not exist.", ctx, param)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise click.BadParameter(f"folder {str(folder)!r} is not writable.", ctx, param)
    limit = os.pathconf(folder, "PC_NAME_MAX") if hasattr(os, "pathconf") else 255
    if len(os.fsencode(path.name)) > limit:
        raise click.BadParameter(
            f"the file name is {len(os.fsencode(path.name))} bytes long; this "
            f"folder takes names of at most {limit}.",
            ctx,
            param,
        )
    return value


def _device(ctx, param, value):
    """``--device``: ``auto`` or a device torch can name (checked before the
    data is read; whether it is present is checked when training starts)."""
    if value == "auto":
        return value
    import torch

    try:
        torch.device(value)
    except (RuntimeError, ValueError):
        raise click.BadParameter(
            f"{value!r} is not a device: give cpu, cuda, cuda:1, mps ... or auto.",
            ctx,
            param,
        ) from None
    return value


def _check_not_an_input(output, data):
    """Refuse an output (or its sidecar) that is one of the training files:
    the model replaced them, and the data was lost."""
    from .._io import sidecar_path

    if data == "builtin":
        return
    folder = Path(data)
    inputs = [folder / n for n in ("spectra.npy", "auxiliary.csv", "targets.csv")]
    for target in (Path(output), sidecar_path(output)):
        for source in inputs:
            if source.exists() and (
                target.resolve() == source.resolve()
                or (target.exists() and target.samefile(source))
            ):
                raise click.BadParameter(
                    f"{target} is the training file {source}: the model would "
                    "replace it. Write the model elsewhere.",
                    param_hint="'-o' / '--output'",
                )


def _folds(ctx, param, value):
    """``--cv``: 0 (no cross-validation) or at least 2 folds."""
    if value == 1:
        raise click.BadParameter(
            "1 fold cannot cross-validate; give 0 (none) or at least 2.", ctx, param
        )
    return value


def _recipe(name):
    try:
        from ..recipes import exoplanet_pipeline
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


def _network_params(model, name):
    """The ``<step>__<name>`` parameters of every network in ``model``."""
    return [k for k in model.get_params() if k.endswith(f"__{name}")]


def _set_max_epochs(model, epochs):
    """Cap the epochs of every network in ``model`` (a pipeline or an ensemble)."""
    keys = _network_params(model, "max_epochs")
    if not keys:
        raise ValueError(f"{type(model).__name__} has no network with max_epochs.")
    return model.set_params(**dict.fromkeys(keys, epochs))


def _set_checkpoint(model, folder):
    """Checkpoint every network of ``model`` in ``folder``: one run per
    network, settings and training set (``{params}-{data}``), so that each
    fold and the final fit resume their own, and other settings (another
    variant, seed or ``--max-epochs``) start runs of their own. ``None``
    clears it, from the fitted networks too (an ensemble's fitted clones):
    a model file then names no folder of this machine."""
    template = None
    if folder is not None:
        escaped = str(folder).replace("{", "{{").replace("}", "}}")
        template = os.path.join(escaped, "{params}-{data}")
    model.set_params(**dict.fromkeys(_network_params(model, "checkpoint"), template))
    if folder is None:
        for net in _fitted_networks(model):
            net.set_params(checkpoint=None)
    return model


def _fitted_networks(model):
    """The fitted networks (estimators with a ``history_``) inside ``model``."""
    if hasattr(model, "history_"):
        return [model]
    steps = [step for _, step in getattr(model, "steps", [])]
    children = steps or list(getattr(model, "estimators_", []))
    return [net for child in children for net in _fitted_networks(child)]


def _training_summary(model):
    """``"network: 41 of at most 80 epochs, best valid_loss 0.312"`` per network."""
    parts = []
    for net in _fitted_networks(model):
        history = net.history_
        text = f"network: {len(history)} of at most {net.max_epochs} epochs"
        if "valid_loss" in history and history["valid_loss"].notna().any():
            text += f", best valid_loss {history['valid_loss'].min():.3f}"
        parts.append(text)
    return "; ".join(parts) or "no network"


def _cv_summary(scores, folds, seconds):
    """One line: each metric's mean ± spread over the folds."""
    values = ", ".join(
        f"{name.removeprefix('test_')} {v.mean():.3f} ± {v.std():.3f}"
        for name, v in scores.items()
    )
    return (
        f"{folds}-fold CV in {seconds:.1f} s (mean ± spread over the folds; "
        f"higher is better): {values}."
    )


@main.command()
@click.argument("recipe", type=click.Choice(["exoplanet"]))
@click.argument("data")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    callback=_writable_output,
    help="Model file to write (e.g. model.skops) in an existing folder; its "
    "sidecar goes next to it.",
)
@click.option(
    "--variant",
    type=click.Choice(EXOPLANET_VARIANTS),
    default="blend",
    show_default=True,
    help="Model: blend (recommended; the best network averaged with gradient "
    "boosting and a support vector machine on each planet against its "
    "siblings), best (the best single network), conv1d, attention, lstm, dense "
    "(one spectrum branch each), *_raw (the same on raw, standardised inputs).",
)
@click.option(
    "--random-state",
    type=click.IntRange(0, 2**32 - 1),
    default=0,
    show_default=True,
    help="Seed of the networks (weights, dropout, batch order, validation "
    "split) and of the cross-validation folds.",
)
@click.option(
    "--cv",
    "folds",
    type=click.IntRange(0),
    callback=_folds,
    default=0,
    show_default=True,
    help="Cross-validate first with this many shuffled folds (seeded by "
    "--random-state), at least 2; the scores go to the sidecar. 0 does not "
    "cross-validate.",
)
@click.option(
    "--max-epochs",
    type=click.IntRange(1),
    help="Override the recipe's maximum number of epochs.",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    callback=_device,
    help="cpu, cuda, cuda:1 ... or auto (CUDA when available).",
)
@click.option(
    "--checkpoint",
    type=click.Path(file_okay=False),
    help="Folder of training checkpoints (created if missing): every network "
    "fit, of each fold and of the final model, writes its state there at each "
    "epoch, and the same command run again after a crash or Ctrl-C resumes "
    "each fit where it stopped (finished fits are read back, not redone).",
)
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Show every epoch of every network fit (a progress bar with the "
    "losses, on stderr).",
)
def train(
    recipe, data, output, variant, random_state, folds, max_epochs, device,
    checkpoint, verbose,
):  # fmt: skip
    """Train a recipe on DATA and save it to OUTPUT, with its sidecar.

    Recipes: exoplanet, which detects water and clouds from a planet's
    transmission spectrum and the parameters of its star and orbit
    (skestimators.recipes.exoplanet_pipeline); --variant chooses the model.

    \b
    DATA is "builtin" (the 2,400 planets bundled with the package) or a
    folder holding, one row per planet in the same order:
      spectra.npy    array (planets, wavelengths, 3): wavelength in
                     micrometres, transit depth (Rp/Rs)**2, its uncertainty
      auxiliary.csv  columns star_mass_kg, star_radius_m, star_temperature,
                     planet_mass_kg, semi_major_axis_m
      targets.csv    columns water and cloud (0 or 1), optionally id

    A line on stderr says when training starts and one sums it up at the
    end (time, epochs, best validation loss); -v shows every epoch. An
    existing OUTPUT is replaced once training is done; while it runs, a
    second train or score writing OUTPUT exits 4 at once. With --checkpoint,
    a killed or interrupted train run again resumes where it stopped.
    """
    import warnings

    from .._io import OutputLockedError, output_lock

    verbose = _verbosity(verbose)
    make = _recipe(recipe)
    _check_not_an_input(output, data)
    if data == "builtin" and Path(data).is_dir():
        click.echo(
            "Note: 'builtin' names the planets bundled with the package; for the "
            "folder named builtin here, give ./builtin.",
            err=True,
        )
    try:
        with output_lock(output), warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings()
            return _train(recipe, data, output, variant, random_state, folds,
                          max_epochs, device, checkpoint, verbose, make)  # fmt: skip
    except OutputLockedError as exc:  # before any training
        _stop(EXIT_OUTPUT_LOCKED, f"Error: {exc}")
    except KeyboardInterrupt as exc:
        detail = " ".join(str(exc).split())  # the engine says where it stopped
        resume = (
            f" Run the same command again to resume from the checkpoints in "
            f"{checkpoint}."
            if checkpoint
            else ""
        )
        _stop(
            EXIT_INTERRUPTED,
            f"Interrupted{f' ({detail})' if detail else ''}: {output} was not "
            f"written (any previous file is unchanged).{resume}",
        )


def _train(recipe, data, output, variant, random_state, folds, max_epochs, device,
           checkpoint, verbose, make):  # fmt: skip
    import warnings

    from sklearn.model_selection import KFold, cross_validate

    from .._io import save, sidecar_path
    from ..metrics import multilabel_scorers

    try:
        X, y = _exoplanet_data(data)
        model = make(
            variant,
            random_state=random_state,
            device=device,
            verbose=int(verbose > 0),
        )
        if max_epochs is not None:
            _set_max_epochs(model, max_epochs)
        if checkpoint is not None:
            _set_checkpoint(model, checkpoint)
        limit = max(model.get_params()[k] for k in _network_params(model, "max_epochs"))
        what = (
            f"{recipe} {variant!r} on {len(X):,} planets (at most {_epochs(limit)} per "
            f"network{'' if verbose else '; -v shows every epoch'})"
        )
        scores = None
        if folds > 1:
            click.echo(f"Cross-validating {what}, {folds} folds...", err=True)
            start = time.perf_counter()
            # A failed fold is an error (scikit-learn's default scores it NaN
            # and prints its traceback inside a warning).
            cv = cross_validate(
                model,
                X,
                y,
                cv=KFold(folds, shuffle=True, random_state=random_state),
                scoring=multilabel_scorers(y),
                error_score="raise",
            )
            scores = {k: v for k, v in cv.items() if k.startswith("test_")}
            seconds = time.perf_counter() - start
            click.echo(_cv_summary(scores, folds, seconds), err=True)
        click.echo(f"Training {what}...", err=True)
        start = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - start
        if checkpoint is not None:  # the model file names no folder of this machine
            _set_checkpoint(model, None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            path = save(model, output, cv_scores=scores, training_data=(X, y))
    except _ERRORS as exc:
        if _debug():
            raise
        raise click.ClickException(_message(exc)) from exc
    for warning in caught:  # one line each (the safe format's pickle fallback)
        click.echo(f"Note: {warning.message}", err=True)
    click.echo(
        f"Trained {recipe} {variant!r} on {len(X):,} planets in {seconds:.1f} s "
        f"({_training_summary(model)}); saved {path} and {sidecar_path(path).name}.",
        err=True,
    )


#: The variants compared by ``demo``.
_DEMO_VARIANTS = ("blend", "best", "conv1d", "dense_raw")


@main.command()
@click.option(
    "--epochs",
    type=click.IntRange(1),
    default=30,
    show_default=True,
    help="Maximum epochs of each network fit.",
)
@click.option(
    "--folds",
    type=click.IntRange(2),
    default=3,
    show_default=True,
    help="Cross-validation folds (the same for every variant).",
)
@click.option(
    "--n-jobs",
    type=int,
    callback=lambda ctx, param, value: _check_n_jobs(value),
    default=2,
    show_default=True,
    help="Fits run at the same time (-1: one per CPU core).",
)
@click.option(
    "--random-state",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the folds and of the networks.",
)
def demo(epochs, folds, n_jobs, random_state):
    """Compare exoplanet variants by cross-validation on the bundled data.

    The variants blend, best, conv1d and dense_raw (see `skestimators train
    --help`) are fitted on the same folds of the 2,400 bundled planets: 12
    fits with the defaults, about 6 minutes on 2 CPU cores (blend, the
    slowest, first). A line per fit goes to stderr as it ends (fits done /
    total, elapsed seconds); the table (mean ± spread over the folds), the
    best variant and the command that trains it go to stdout.
    """
    from ..datasets import load_exoplanet
    from ..metrics import multilabel_scorers
    from ..model_selection import compare_variants

    make = _recipe("exoplanet")
    X, y = load_exoplanet()
    variants = {}
    for name in _DEMO_VARIANTS:
        model = make(name, random_state=random_state, device="cpu")
        variants[name] = _set_max_epochs(model, epochs)
    n_fits = len(variants) * folds
    click.echo(
        f"Exoplanet water/cloud: {len(X):,} planets, {len(variants)} variants x "
        f"{folds} folds = {n_fits} fits of at most {_epochs(epochs)}, {n_jobs} at "
        "a time; a line per fit as it ends...",
        err=True,
    )
    start = time.perf_counter()
    try:
        results = compare_variants(
            variants,
            X,
            y,
            cv=folds,
            scoring=multilabel_scorers(y),
            n_jobs=n_jobs,
            random_state=random_state,
            verbose=1,
        )
    except _ERRORS as exc:  # every fit failed, more folds than planets...
        if _debug():
            raise
        raise click.ClickException(_message(exc)) from exc
    seconds = time.perf_counter() - start
    click.echo(f"Done: {n_fits} fits in {seconds:.0f} s.", err=True)
    click.echo(_demo_report(results, list(y.columns), folds, epochs, len(X)))


def _check_n_jobs(value):
    """``--n-jobs``: a number of processes, or a negative count back from the
    number of cores, as joblib reads it; 0 means nothing."""
    if value == 0:
        raise click.BadParameter("0 runs no fit; use a positive number, or -1.")
    return value


def _epochs(n):
    return f"{n} epoch{'' if n == 1 else 's'}"


def _demo_report(results, targets, folds, epochs, n_planets):
    """The labelled comparison table, the best variant and how to train it."""
    import pandas as pd

    from ..model_selection import summarize_comparison

    labels = {f"{t}_auc": f"{t} AUC" for t in targets}
    labels["fit_time"] = "seconds/fit"
    table = summarize_comparison(results).rename(columns=labels)
    means = summarize_comparison(results, precision=None)
    ranking = pd.DataFrame(
        {
            "accuracy": means[("accuracy", "mean")],
            "auc": means[[(f"{t}_auc", "mean") for t in targets]].mean(axis=1),
        }
    )
    # A variant with a failed fit has NaN means: it cannot be ranked.
    ranked = ranking.dropna().sort_values(["accuracy", "auc"], ascending=False)
    legend = {
        **{
            labels[f"{t}_auc"]: f"area under the ROC curve of {t} (0.5: chance, "
            "1: every planet ranked right)"
            for t in targets
        },
        "accuracy": f"share of held-out planets with {' and '.join(targets)} "
        f"{'both' if len(targets) == 2 else 'all'} right",
        "seconds/fit": "mean seconds to train one variant on one fold "
        f"(at most {_epochs(epochs)})",
    }
    width = max(map(len, legend))
    lines = [
        table.to_string(),
        "",
        f"Mean ± standard deviation over the {folds} folds (their spread, not an "
        "error bar); higher is better.",
        *(f"  {label:<{width}}  {text}" for label, text in legend.items()),
    ]
    if ranked.empty:
        lines.append("Best: none, every variant had a fit that failed (see above).")
        return "\n".join(lines)
    best = ranked.index[0]
    lines += [
        f"Best: {best} (accuracy {table.loc[best, 'accuracy']}, the highest).",
        f"Train it on all {n_planets:,} planets and save it (with the recipe's own "
        "epoch limit):",
        f"  skestimators train exoplanet builtin --variant {best} "
        f"-o exoplanet-{best}.skops",
    ]
    return "\n".join(lines)
