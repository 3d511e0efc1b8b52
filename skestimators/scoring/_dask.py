"""Scoring the chunks of a job on a Dask cluster (workers load the model once)."""

from __future__ import annotations

import logging

from ._chunks import run_remote

__all__ = ["run_dask"]


def _client(scheduler, n_workers):
    """``(client, cleanup)`` for an address, a Client or ``"local"``."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError(
            "Scoring on Dask needs dask.distributed: pip install 'dask[distributed]'."
        ) from exc
    if isinstance(scheduler, Client):
        return scheduler, lambda: None
    if scheduler == "local":
        # The scheduler runs in this process: its INFO logs (a line per
        # worker, connection and closing) reach the console unless the root
        # logger asks for them; restored when the job ends.
        logger = logging.getLogger("distributed")
        level = logger.level
        if logging.getLogger().getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.ERROR)
        # A cluster of this job's own: its logs (start-up, a failed chunk's
        # traceback on each worker) stay quiet; the job reports errors itself.
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,
        )
        client = Client(cluster)

        def cleanup():
            try:
                client.close()
                cluster.close()
            finally:
                logger.setLevel(level)

        return client, cleanup
    client = Client(scheduler)
    return client, client.close


def run_dask(scheduler, n_workers, model_key, specs, resume, bar, options) -> int:
    from distributed import as_completed

    client, cleanup = _client(scheduler, n_workers)
    try:
        workers = max(len(client.nthreads()), 1)
        limit = 2 * workers  # chunks in flight: bounds the driver's memory
        running = as_completed()
        pending = set()  # unfinished only: a future holds its chunk's rows
        n_chunks = 0

        def collect(future):
            pending.discard(future)
            resume.commit(bar, *future.result())

        try:
            for spec in specs:
                n_chunks = spec.index + 1
                if resume.check(spec)[0]:
                    continue
                future = client.submit(
                    run_remote,
                    model_key,
                    spec,
                    str(resume.writer.dir.absolute()),  # workers' cwd differs
                    options["method"],
                    options["id_name"],
                    pure=False,
                )
                pending.add(future)
                running.add(future)
                while running.count() >= limit:
                    collect(next(running))
            for future in running:
                collect(future)
        except BaseException:
            # A cluster of the user's goes on: chunks still queued would
            # write parts after this job released its output.
            client.cancel(list(pending))
            raise
        return n_chunks
    finally:
        cleanup()
