"""Data-parallel training across processes, through ``torch.distributed``.

A script launched by ``torchrun --nproc_per_node=N`` or ``accelerate launch``
runs once per process, each with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT`` in its environment. Every ``fit`` in such
a process joins the process group (created on first use: NCCL for CUDA
tensors, Gloo for CPU tensors) and trains data-parallel:

- every process holds the same data (the unchanged script loads it) and
  draws the same validation split and the same order of samples each epoch
  (the random seed of process 0 is broadcast);
- each global batch of ``batch_size`` samples is cut into ``N`` contiguous
  shards, one per process;
- after each backward pass the gradients are summed across processes, each
  weighted by its share of the batch, in one collective call that also
  carries the loss: the update is that of the whole batch, exactly as in a
  single process (up to the order of floating-point sums), and a loss that
  is not finite on any process stops every process at the same batch;
- buffers (batch-normalisation statistics) are broadcast from process 0
  after every epoch, and the module's state once more at the end, so every
  process ends with the same fitted estimator;
- validation runs on the whole validation set in every process, and every
  process records the scores of process 0, so that early stopping and
  learning-rate schedules decide alike everywhere;
- callbacks' errors are kept and agreed on at the end of every epoch, so
  that a failure on process 0 alone (checkpoints, loggers) stops all.

The module is never wrapped (no ``DistributedDataParallel``): the fitted
``module_`` is the plain module, so model files and pickles are those of a
single process. Only process 0 writes checkpoints, logs and model files.
"""

from __future__ import annotations

import collections
import datetime
import multiprocessing
import os
import threading

import numpy as np
import torch

__all__ = [
    "DataParallel",
    "data_parallel",
    "is_main_process",
    "on_main_process",
    "stop_the_others",
    "world_size",
]

_WRITERS = ("skorch.callbacks.logging", "skestimators.tracking")


def _launched() -> bool:
    """True in a process started by a launcher with a world of several processes.

    Processes started by this one (joblib/loky or Dask workers, which
    inherit the environment) and threads other than the main thread train
    on their own: only the launched process itself joins the group.
    """
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return False
    return (
        size > 1
        and "RANK" in os.environ
        and os.environ.get("SKESTIMATORS_DISTRIBUTED", "1") != "0"
        and multiprocessing.parent_process() is None
        and threading.current_thread() is threading.main_thread()
    )


def _initialized() -> bool:
    dist = torch.distributed
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """The number of processes training together.

    Returns
    -------
    n_processes : int
        ``WORLD_SIZE`` of a job launched by ``torchrun`` or ``accelerate
        launch`` (in the launched processes themselves), else 1.

    See Also
    --------
    is_main_process : Whether this process writes files.

    Examples
    --------
    >>> from skestimators.distributed import world_size
    >>> world_size()  # a plain Python process
    1
    """
    if _initialized():
        return torch.distributed.get_world_size()
    if _launched():
        return int(os.environ["WORLD_SIZE"])
    return 1


def is_main_process() -> bool:
    """Whether this process writes the files of a data-parallel job.

    Checkpoints, loggers and :func:`skestimators.save` already write from
    process 0 only; guard your own writes (reports, figures) with this
    function when a script runs under ``torchrun``.

    Returns
    -------
    main : bool
        True in process 0 of a launched job, and in any single process.

    See Also
    --------
    world_size : The number of processes training together.

    Examples
    --------
    >>> from skestimators.distributed import is_main_process
    >>> if is_main_process():
    ...     print("writing the report")
    writing the report
    """
    if _initialized():
        return torch.distributed.get_rank() == 0
    if _launched():
        return int(os.environ["RANK"]) == 0
    return True


def stop_the_others(error, device):
    """Tell the other processes of a data-parallel job that this one failed
    ``fit``'s checks of its data (the caller then raises ``error``).

    They meet every process in their first collective call, and would wait
    there for this one until ``SKESTIMATORS_DISTRIBUTED_TIMEOUT`` under a
    launcher that does not end a job whose process failed (``srun``, or
    processes started by hand). Each ``fit`` of a data-parallel job agrees
    once on these checks (:meth:`DataParallel.agree`), so every process
    stops with an error. ``device`` is a callable giving this fit's device.
    """
    try:
        parallel = data_parallel(device())
    except Exception:  # no process group to join: this process's error alone
        return
    if parallel is not None:
        parallel.agree(error, during="checking their data")


#: Calls of :func:`on_main_process` so far in this process, by key.
_CALLS = collections.Counter()


def _job_store():
    """The key-value store of this job's process group, or None."""
    if not (
        _initialized()
        and torch.distributed.get_world_size() > 1
        and threading.current_thread() is threading.main_thread()
    ):
        return None
    try:
        from torch.distributed import distributed_c10d

        return distributed_c10d._get_default_store()
    except Exception:  # another torch: process 0 writes, the others go on
        return None


def on_main_process(write, elsewhere, *, key, failure=RuntimeError):
    """Run ``write`` on process 0 only; the other processes wait for it.

    Used by the writes of a data-parallel job (a model file): every process
    that calls it returns once the file exists, ``write()``'s result on
    process 0 and ``elsewhere`` on the others, or raises when process 0
    failed (its own error there, ``failure`` quoting it elsewhere). Process 0
    posts the outcome of its ``n``-th call with ``key`` in the job's store
    rather than meeting the others in a collective call, so that a write
    guarded by :func:`is_main_process` (process 0 alone) does not wait.
    Without a process group (a single process, or a job whose processes
    never met in a ``fit``), process 0 writes and the others return at once.
    """
    store = _job_store()
    if store is None:
        return write() if is_main_process() else elsewhere
    _CALLS[key] += 1
    name = f"skestimators/{key}/{_CALLS[key]}"
    if torch.distributed.get_rank() == 0:
        try:
            result = write()
        except BaseException as exc:
            store.set(name, f"{type(exc).__name__}: {exc}")
            raise
        store.set(name, "")
        return result
    try:
        store.wait([name])  # up to the group's timeout
    except Exception as exc:
        raise failure(
            f"Process 0 of this data-parallel job did not write within the "
            f"timeout ({exc}); call this in every process, or in process 0 only."
        ) from None
    outcome = store.get(name).decode(errors="replace")
    if outcome:
        raise failure(f"Process 0 of this data-parallel job failed to write: {outcome}")
    return elsewhere


def _init_process_group():
    dist = torch.distributed
    if not dist.is_available():
        raise RuntimeError(
            "This process was launched for distributed training (WORLD_SIZE="
            f"{os.environ.get('WORLD_SIZE')}) but this torch build has no "
            "torch.distributed."
        )
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(_local_gpu())
    timeout = datetime.timedelta(
        seconds=float(os.environ.get("SKESTIMATORS_DISTRIBUTED_TIMEOUT", "1800"))
    )
    dist.init_process_group(backend=backend, timeout=timeout)


def _local_gpu() -> int:
    """This process's GPU: ``LOCAL_RANK``, or the only one it sees (a scheduler
    such as SLURM may give each process one GPU of its own)."""
    local, count = int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()
    narrowed = "CUDA_VISIBLE_DEVICES" in os.environ
    if count == 1 and (narrowed or os.environ.get("LOCAL_WORLD_SIZE", "1") == "1"):
        return 0
    if local >= count:
        raise RuntimeError(
            f"LOCAL_RANK={local} names a GPU, but this process sees {count}: "
            "start at most one process per GPU on each machine."
        )
    return local


def data_parallel(device: torch.device):
    """The :class:`DataParallel` of this fit, or None to train in one process.

    Fits in threads other than the main thread train alone, before and after
    the process group exists (search folds in threads would otherwise call
    collectives in a different order in each process, and hang).
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    if not (_initialized() or _launched()):
        return None
    if not _initialized():
        _init_process_group()
    if torch.distributed.get_world_size() == 1:
        return None
    return DataParallel(device)


class DataParallel:
    """The collective operations of one data-parallel ``fit``.

    Parameters
    ----------
    device : torch.device
        The training device of this process; the tensors of the collective
        calls live there.
    """

    def __init__(self, device):
        dist = torch.distributed
        self.rank = dist.get_rank()
        self.size = dist.get_world_size()
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            # torchrun: one GPU per process, the one LOCAL_RANK names.
            device = torch.device("cuda", torch.cuda.current_device())
        self.device = device
        self.seed = 0

    # -- before training -------------------------------------------------------------
    def _comm_device(self):
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def agree(self, error=None, *, during="before training"):
        """Raise on every process if ``error`` (an exception or None) occurred on any.

        A process that fails alone would leave the others waiting in their next
        collective call; each fit step that can fail on one process only
        (a locked checkpoint directory, different data, a callback of
        process 0) passes through here.
        """
        failed = torch.tensor(
            [0.0 if error is None else 1.0], device=self._comm_device()
        )
        torch.distributed.all_reduce(failed)
        if error is not None:
            raise error
        if failed.item() > 0:
            raise RuntimeError(
                f"Distributed training stopped: {int(failed.item())} other "
                f"process(es) of the {self.size} failed {during} (their "
                "error says why)."
            )

    def broadcast_scores(self, scores):
        """The validation scores (a dict of floats) of process 0, on every process."""
        values = torch.tensor(
            list(scores.values()), dtype=torch.float64, device=self._comm_device()
        )
        torch.distributed.broadcast(values, src=0)
        return dict(zip(scores, values.tolist(), strict=True))

    def broadcast_seed(self, seed: int) -> int:
        """The random seed of process 0, on every process."""
        value = torch.tensor([int(seed)], dtype=torch.int64, device=self._comm_device())
        torch.distributed.broadcast(value, src=0)
        self.seed = int(value.item())
        return self.seed

    def check_same_data(self, data):
        """Raise on every process unless every process holds the same data.

        Compares the number of samples and a float64 checksum of the inputs,
        targets and weights (cheap; catches a script that loads different
        files or shuffles differently in each process).
        """
        sums = [float(len(data))]
        tensors = list(data.X.values()) if isinstance(data.X, dict) else [data.X]
        tensors += [t for t in (data.y, data.sample_weight) if t is not None]
        for t in tensors:
            if isinstance(t, torch.Tensor):
                finite = torch.nan_to_num(t.double(), nan=0.0, posinf=0.0, neginf=0.0)
                sums.append(float(finite.sum()))
            else:  # out-of-core or sparse rows: their count only
                sums.append(float(len(t)))
        local = torch.tensor(sums, dtype=torch.float64, device=self._comm_device())
        lowest, highest = local.clone(), local.clone()
        torch.distributed.all_reduce(lowest, op=torch.distributed.ReduceOp.MIN)
        torch.distributed.all_reduce(highest, op=torch.distributed.ReduceOp.MAX)
        scale = torch.clamp(highest.abs(), min=1.0)
        if bool(((highest - lowest) / scale > 1e-9).any()):
            raise ValueError(
                f"Distributed training needs the same data in all {self.size} "
                f"processes, but they differ (process {self.rank} holds "
                f"{len(data)} samples; the sample counts range from "
                f"{int(lowest[0])} to {int(highest[0])}, or the values differ). "
                "Load the same data, in the same order, in every process."
            )

    def prepare(self, config, data, seed):
        """Check the fit can run data-parallel; return process 0's random seed."""
        if config.batch_size < 2 * self.size:
            raise ValueError(
                f"batch_size={config.batch_size} is the global batch, cut into "
                f"{self.size} shards (one per process) of at least two samples: "
                f"use batch_size >= {2 * self.size}."
            )
        self.check_same_data(data)
        return self.broadcast_seed(seed)

    def check_train_size(self, n_train):
        """Refuse a training set that gives a process less than two samples:
        every batch would be dropped, and the fit would train nothing."""
        if n_train < 2 * self.size:
            raise ValueError(
                f"{n_train} training sample(s) cannot give each of the "
                f"{self.size} processes two samples of a batch: train on at least "
                f"{2 * self.size} samples, or on fewer processes."
            )

    def on_main(self, fn):
        """Run ``fn`` on process 0; return its exception (or None) for :meth:`agree`."""
        if self.rank != 0:
            return None
        try:
            fn()
        except Exception as exc:  # handed to agree(), which raises it
            return exc
        return None

    def attach(self, net, seed):
        """Make ``net`` train data-parallel from the same start on every process."""
        net.data_parallel = self
        net.shuffle_generator = torch.Generator().manual_seed(seed)
        self.broadcast_state(net.module_)

    def detach(self, net, *, failed=False):
        """End of training: every process keeps the state of process 0.

        After a failure nothing is sent: the processes that failed together
        raise their errors, and one that failed alone must not wait for the
        others in a collective call they never make.
        """
        try:
            if not failed:
                self.broadcast_state(net.module_)
        finally:
            net.data_parallel = net.shuffle_generator = None
            net.batch_share_ = 1.0

    # -- batches ---------------------------------------------------------------------
    def shard(self, start: int, stop: int) -> tuple[int, int]:
        """This process's contiguous share of the global batch ``[start, stop)``."""
        n = stop - start
        return start + n * self.rank // self.size, start + n * (
            self.rank + 1
        ) // self.size

    def sync_gradients(self, parameters, loss, share):
        """Average the gradients and the loss over processes; return the loss.

        Parameters
        ----------
        parameters : list of torch.nn.Parameter
            The trainable parameters, in the same order on every process.
        loss : torch.Tensor
            This process's mean loss over its shard.
        share : float
            The shard's fraction of the global batch: gradients and loss are
            weighted by it and summed, which gives those of the whole batch.
        """
        grads = [p.grad for p in parameters]
        present = torch.tensor(
            [0.0 if g is None else 1.0 for g in grads], device=loss.device
        )
        flat = torch.cat(
            [
                torch.zeros(p.numel(), device=loss.device, dtype=torch.float32)
                if g is None
                else g.detach().reshape(-1).float()
                for p, g in zip(parameters, grads, strict=True)
            ]
            + [loss.detach().reshape(1).float(), present]
        )
        flat[: -len(grads)] *= share
        torch.distributed.all_reduce(flat)
        offset = 0
        seen_by_any = flat[-len(grads) :].tolist()  # one device sync, not one each
        for p, g, seen in zip(parameters, grads, seen_by_any, strict=True):
            n = p.numel()
            if seen > 0:
                value = flat[offset : offset + n].view_as(p).to(p.dtype)
                if g is None:
                    p.grad = value.clone()
                else:
                    g.copy_(value)
            offset += n
        # A copy: a view would keep the whole gradient buffer alive as long as
        # the epoch keeps the batch's loss (a gradient-sized buffer per batch).
        return flat[offset].clone()

    # -- after an epoch and after training -------------------------------------------
    def broadcast_buffers(self, module):
        """Give every process the buffers (batch-norm statistics) of process 0."""
        for buffer in module.buffers():
            torch.distributed.broadcast(buffer.data, src=0)

    def broadcast_state(self, module):
        """Give every process the parameters and buffers of process 0."""
        for tensor in list(module.parameters()) + list(module.buffers()):
            torch.distributed.broadcast(tensor.data, src=0)

    def decorrelate(self, epoch: int, generator):
        """Per-process streams for dropout and augmentation in ``epoch``.

        Process 0 keeps the streams of a single process; the others reseed
        from the broadcast seed, the epoch and their rank (so that a resumed
        run draws as the original did).
        """
        if self.rank == 0:
            return
        key = [self.seed, epoch, self.rank]
        derived = int(np.random.SeedSequence(key).generate_state(1)[0])
        torch.manual_seed(derived)
        if generator is not None:
            generator.manual_seed(derived + 1)

    def writes(self, name, callback) -> bool:
        """Whether ``callback`` runs in this process: loggers, progress and
        checkpoints run on process 0 only."""
        if self.rank == 0:
            return True
        from skorch.callbacks import Checkpoint, TrainEndCheckpoint

        if name in ("checkpoint", "progress") or isinstance(
            callback, (Checkpoint, TrainEndCheckpoint)
        ):
            return False
        return not type(callback).__module__.startswith(_WRITERS)
