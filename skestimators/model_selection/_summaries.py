"""Summaries and plots of the results of :func:`compare_variants`."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["plot_comparison", "summarize_comparison"]

#: The columns of a comparison's results, one row per variant, repeat, fold
#: and metric.
COLUMNS = ["variant", "repeat", "fold", "metric", "value", "fit_time"]


def summarize_comparison(
    df: pd.DataFrame, *, precision: int | None = 3
) -> pd.DataFrame:
    """Mean ± standard deviation of each metric per variant, as a wide table.

    Parameters
    ----------
    df : DataFrame
        The output of :func:`compare_variants`.
    precision : int or None, default=3
        Decimals of the ``"mean ± std"`` strings; None returns the numbers,
        with ``(metric, "mean")`` and ``(metric, "std")`` columns.

    Returns
    -------
    summary : DataFrame
        One row per variant (in the order of ``df``), one column per metric
        plus ``fit_time`` (mean seconds per fit). Standard deviations are over
        all folds and repeats (``ddof=0``, as ``std_test_score`` in
        scikit-learn searches); fold scores are not independent, so read
        them as spreads, not standard errors. A variant with a failed fit
        (a NaN ``error_score``) has NaN statistics, as in scikit-learn's
        ``cv_results_``.

    See Also
    --------
    compare_variants : Produces ``df``.

    Examples
    --------
    >>> import pandas as pd
    >>> from skestimators.model_selection import summarize_comparison
    >>> df = pd.DataFrame({
    ...     "variant": ["a", "a", "b", "b"], "repeat": 0, "fold": [0, 1, 0, 1],
    ...     "metric": "accuracy", "value": [0.8, 0.9, 0.6, 0.7],
    ...     "fit_time": 1.0,
    ... })
    >>> summarize_comparison(df)  # doctest: +NORMALIZE_WHITESPACE
                  accuracy  fit_time
    variant
    a        0.850 ± 0.050     1.000
    b        0.650 ± 0.050     1.000
    """
    _check_results(df)
    grouped = df.groupby(["variant", "metric"], sort=False)["value"]
    stats = grouped.agg(mean=strict(np.mean), std=strict(np.std))
    wide = stats.unstack("metric")
    wide.columns = wide.columns.swaplevel(0, 1)
    metrics = list(dict.fromkeys(df["metric"]))
    variants = list(dict.fromkeys(df["variant"]))
    wide = wide.reindex(
        index=variants, columns=pd.MultiIndex.from_product([metrics, ["mean", "std"]])
    )
    fits = df.drop_duplicates(["variant", "repeat", "fold"])
    fit_time = fits.groupby("variant", sort=False)["fit_time"].mean().reindex(variants)
    if precision is None:
        wide[("fit_time", "mean")] = fit_time
        wide.index.name = "variant"
        return wide
    text = pd.DataFrame(
        {
            m: [
                f"{mu:.{precision}f} ± {sd:.{precision}f}"
                for mu, sd in zip(wide[(m, "mean")], wide[(m, "std")])
            ]
            for m in metrics
        },
        index=pd.Index(variants, name="variant"),
    )
    text["fit_time"] = [f"{t:.{precision}f}" for t in fit_time]
    return text


def plot_comparison(df: pd.DataFrame, ax=None, *, metrics=None):
    """Box plots of the fold scores of each variant, with every fold as a dot.

    A fold whose fit failed (a NaN score, see ``error_score`` of
    :func:`compare_variants`) is drawn as a red cross on the x axis, and its
    variant's label says how many of its folds failed; the box covers the
    folds that were scored.

    Parameters
    ----------
    df : DataFrame
        The output of :func:`compare_variants`.
    ax : matplotlib Axes or array-like of Axes, default=None
        One Axes per metric; None makes a new figure with a row of Axes.
    metrics : list of str, default=None
        Metrics to draw (default: all, in the order of ``df``).

    Returns
    -------
    axes : ndarray of matplotlib Axes
        One Axes per metric, variants along the x axis.

    See Also
    --------
    compare_variants : Produces ``df``.

    Examples
    --------
    >>> import pandas as pd
    >>> from skestimators.model_selection import plot_comparison
    >>> df = pd.DataFrame({
    ...     "variant": ["a", "a", "b", "b"], "repeat": 0, "fold": [0, 1, 0, 1],
    ...     "metric": "r2", "value": [0.8, 0.9, 0.6, 0.7], "fit_time": 1.0,
    ... })
    >>> axes = plot_comparison(df)
    >>> [t.get_text() for t in axes[0].get_xticklabels()]
    ['a', 'b']
    """
    import matplotlib.pyplot as plt

    _check_results(df)
    metrics = list(dict.fromkeys(df["metric"])) if metrics is None else list(metrics)
    variants = list(dict.fromkeys(df["variant"]))
    if ax is None:
        _, ax = plt.subplots(
            1,
            len(metrics),
            figsize=(1.2 + 1.1 * len(variants) * len(metrics), 3.5),
            squeeze=False,
            layout="constrained",
        )
    axes = np.ravel(ax)
    if axes.size < len(metrics):
        raise ValueError(f"Need one Axes per metric ({len(metrics)}), got {axes.size}.")
    jitter = np.random.default_rng(0)
    positions = np.arange(len(variants))
    for axis, metric in zip(axes, metrics):
        sub = df[df["metric"] == metric]
        values = [sub.loc[sub["variant"] == v, "value"].to_numpy() for v in variants]
        scored = [vals[np.isfinite(vals)] for vals in values]
        axis.boxplot(scored, positions=positions, widths=0.5, showfliers=False)
        labels = []
        for pos, name, vals, ok in zip(positions, variants, values, scored):
            axis.scatter(
                pos + jitter.uniform(-0.12, 0.12, ok.size),
                ok,
                s=12,
                alpha=0.6,
                color="tab:blue",
                zorder=3,
            )
            failed = vals.size - ok.size
            if failed:  # a red cross per failed fold, on the axis
                axis.scatter(
                    pos + jitter.uniform(-0.12, 0.12, failed),
                    np.zeros(failed),
                    marker="x",
                    color="tab:red",
                    transform=axis.get_xaxis_transform(),
                    clip_on=False,
                    zorder=3,
                )
            labels.append(
                f"{name}\n({failed} of {vals.size} failed)" if failed else name
            )
        axis.set_xticks(positions, labels)
        axis.set_title(metric)
    return axes[: len(metrics)]


def strict(statistic):
    """``statistic`` of a pandas group, NaN when a value is NaN: a failed fit
    must not drop out of the statistics, as it would from pandas' own."""
    return lambda values: float(statistic(values.to_numpy()))


def _check_results(df):
    missing = set(COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(
            "Expected the output of compare_variants; missing columns "
            f"{sorted(missing)}."
        )
