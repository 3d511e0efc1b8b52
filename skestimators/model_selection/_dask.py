"""Checks for running searches and comparisons on a Dask cluster through joblib."""

from __future__ import annotations

import warnings

from joblib.parallel import get_active_backend

__all__ = ["check_dask_workers"]

# What each worker evaluates: builtins only, so that the probe itself never
# needs the package on the worker (a function of this module would be pickled
# by reference and fail to unpickle exactly where the check matters).
_PROBE = "getattr(__import__('importlib').import_module({name!r}), '__version__', '')"


def check_dask_workers(client, modules=("skestimators",)) -> dict:
    """Check that every worker of a Dask cluster can import ``modules``.

    A worker that lacks the package cannot unpickle the tasks of
    ``GridSearchCV(n_jobs=...)`` or :func:`compare_variants` run under
    ``joblib.parallel_config(backend="dask")``; depending on the versions,
    the search then fails with an obscure unpickling error or waits forever.
    Calling this first turns that into one clear error. The Dask backend of
    :func:`compare_variants` and :class:`OptunaSearchCV` calls it
    automatically; call it yourself before a scikit-learn search.

    Parameters
    ----------
    client : distributed.Client
        Client of the cluster to check.
    modules : sequence of str, default=("skestimators",)
        Modules every worker must import.

    Returns
    -------
    versions : dict
        ``{worker_address: {module: version}}`` (empty version strings for
        modules without ``__version__``).

    Raises
    ------
    RuntimeError
        Naming each worker that cannot import a module, and the error.

    Warns
    -----
    UserWarning
        When a worker imports another version of a module than this process.

    Examples
    --------
    >>> from distributed import Client, LocalCluster  # doctest: +SKIP
    >>> with LocalCluster(n_workers=2, processes=True) as cluster, Client(
    ...     cluster
    ... ) as client:  # doctest: +SKIP
    ...     versions = check_dask_workers(client)
    """
    versions: dict = {}
    missing: dict = {}
    workers: set = set()
    for name in modules:
        # on_error="return": a failing worker gives its exception, the others
        # their result, instead of one error for the whole call.
        results = client.run(eval, _PROBE.format(name=name), {}, on_error="return")
        workers.update(results)
        for worker, result in results.items():
            if isinstance(result, BaseException):
                missing.setdefault(worker, []).append(
                    f"{name} ({type(result).__name__}: {result})"
                )
            else:
                versions.setdefault(worker, {})[name] = result
    if missing:
        lines = "\n".join(f"  {w}: {', '.join(m)}" for w, m in sorted(missing.items()))
        raise RuntimeError(
            f"{len(missing)} of {len(workers)} Dask workers cannot import the "
            "modules the tasks need; install them in the workers' environment "
            "(same versions as here):\n" + lines
        )
    _warn_on_version_mismatch(versions, modules)
    return versions


def _warn_on_version_mismatch(versions, modules):
    import importlib

    for name in modules:
        local = getattr(importlib.import_module(name), "__version__", "")
        other = {w: v[name] for w, v in versions.items() if v.get(name) != local}
        if other:
            warnings.warn(
                f"{name} {local} here but {sorted(set(other.values()))} on Dask "
                f"workers {sorted(other)}.",
                UserWarning,
                stacklevel=3,
            )


def active_dask_client():
    """The client of joblib's active Dask backend, or None for other backends."""
    backend, _ = get_active_backend()
    if type(backend).__name__ != "DaskDistributedBackend":
        return None
    return getattr(backend, "client", None)


def check_active_backend():
    """Run :func:`check_dask_workers` when joblib's active backend is Dask."""
    client = active_dask_client()
    if client is not None:
        check_dask_workers(client)
