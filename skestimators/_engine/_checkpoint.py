"""Training checkpoints: written atomically at each epoch end, resumed by ``fit``.

A checkpoint directory holds ``checkpoint.pt`` (everything needed to continue:
module, optimizer, schedule, grad scaler, early-stopping state, history, random
generator states and epoch), ``run.json`` (what the run is: estimator,
parameters, training data) and a lock, held for the whole fit so that two
fits never write the same directory. A checkpoint also records fingerprints of
the estimator's configuration and of its training data; ``fit`` resumes only
from a checkpoint with the same ones and names the difference otherwise.

The directory may name its fit (``{params}``, ``{data}``: see
:mod:`._run_directory`), so that each fold and candidate of a
cross-validation or a search keeps its own run.

Files are written to a temporary name, flushed to disk and renamed over the
previous checkpoint, so a process killed at any moment leaves either the old
or the new checkpoint, never a half-written one. The disk part of a write runs
in a background thread while the next epoch trains.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
import warnings
from collections import OrderedDict

import numpy as np
import torch
from skorch.callbacks import Callback

from ..exceptions import CheckpointError, CheckpointWarning
from ._divergence import finite_weights
from ._history import never_finite, validation_losses
from ._packed_history import HistoryPacker, unpack_history
from ._run_directory import check_directory, run_directory

FORMAT = 2
#: Formats ``fit`` resumes from: 1 stored the history as a list of rows.
_READS = (1, FORMAT)
_FILE = "checkpoint.pt"
_LOCK = "checkpoint.lock"
_OWNER = "checkpoint.owner.json"
_RUN = "run.json"


# -- the directory ---------------------------------------------------------------------
class CheckpointStore:
    """One checkpoint directory, locked for the lifetime of a fit.

    Parameters
    ----------
    directory : str or path
        Created if missing; ``{params}`` and ``{data}`` in it are replaced
        (:func:`run_directory`).
    name : str
        The estimator's class name.
    config : dict
        :func:`config_fingerprint` of the estimator.
    data : dict
        :func:`data_fingerprint` of the training data.
    callbacks : list of str, default=()
        :func:`callbacks_fingerprint` of the user's callbacks: part of the
        ``{params}`` digest, not of the checks of a resume.
    """

    def __init__(self, directory, name, config, data, callbacks=()):
        self.named = check_directory(directory)  # {params}, {data} or neither
        self.directory = run_directory(directory, name, config, data, callbacks)
        self.name = name
        self.config = config
        self.data = data
        self.callbacks = list(callbacks)
        self.path = self.directory / _FILE
        self.lock_ = None
        self.writer_ = None
        self.failure_ = None
        self.warned_ = None  # the epoch whose failed write was warned of
        self.checked_ = False  # whether a written state was read back once

    @classmethod
    def for_fit(cls, config, data, groups):
        """The store of a fit of ``config`` (an ``EngineConfig``) on ``data``."""
        from . import _fingerprint  # imports _config, which imports this module

        return cls(
            config.checkpoint,
            config.name,
            _fingerprint.config_fingerprint(config.params),
            _fingerprint.data_fingerprint(data, groups),
            _fingerprint.callbacks_fingerprint(config.callbacks),
        )

    # -- locking ---------------------------------------------------------------------
    def acquire(self):
        from filelock import FileLock, Timeout

        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CheckpointError(
                f"Cannot create the checkpoint directory {self.directory}: "
                f"{exc.strerror or exc}."
            ) from None
        lock = FileLock(str(self.directory / _LOCK))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if self.named == {"params", "data"}:
                why = (
                    "with the same parameters and training data: the same fit "
                    "runs twice (the same script started twice?)."
                )
            else:
                why = "; give each fit its own directory. " + (
                    _CANDIDATES if "data" in self.named else _CLONES
                )
            raise CheckpointError(
                f"Another fit ({self._owner()}) is training with the checkpoint "
                f"directory {self.directory}{why}"
            ) from None
        except OSError as exc:
            raise CheckpointError(
                f"Cannot lock the checkpoint directory {self.directory}: "
                f"{exc.strerror or exc}. Give a directory this process can write."
            ) from None
        self.lock_ = lock
        for stale in self.directory.glob(f".{_FILE}.*.tmp"):
            stale.unlink(missing_ok=True)  # a write cut short by a killed process
        owner = {"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        try:
            (self.directory / _OWNER).write_text(json.dumps(owner))
        except OSError:
            pass  # only used to name the owner in the message above
        self._describe()
        return self

    def _describe(self):
        """Write ``run.json``: which estimator, parameters and training data
        the directory's run is (to tell the folds and candidates apart)."""
        run = {
            "estimator": self.name,
            "params": self.config,
            "callbacks": self.callbacks,
            "data": self.data,
        }
        tmp = self.directory / f".{_RUN}.{os.getpid()}.tmp"
        try:
            tmp.write_text(json.dumps(run, indent=1, sort_keys=True) + "\n")
            os.replace(tmp, self.directory / _RUN)
        except OSError:
            tmp.unlink(missing_ok=True)  # a description only: the run goes on

    def release(self):
        """Finish the last write, then unlock the directory."""
        try:
            self.wait()
        finally:
            self._unlock()

    def _unlock(self):
        if self.lock_ is not None:
            self.lock_.release()
            self.lock_ = None

    def _owner(self):
        try:
            owner = json.loads((self.directory / _OWNER).read_text())
            return f"pid {owner['pid']}, started {owner['started']}"
        except (OSError, ValueError, KeyError):
            return "another process"

    # -- reading ---------------------------------------------------------------------
    def load(self):
        """The checkpoint for this configuration and data, or None if none.

        Raises :class:`CheckpointError` when the directory holds a checkpoint
        of another estimator, configuration or data set.
        """
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(
                f"The checkpoint {self.path} cannot be read ({type(exc).__name__}: "
                f"{exc}); delete it to start again."
            ) from None
        if not isinstance(state, dict) or state.get("format") not in _READS:
            raise CheckpointError(
                f"{self.path} is not a checkpoint of this version of skestimators; "
                "delete it or use another directory."
            )
        self._check(state, self.data)
        return state

    def _check(self, state, data):
        where = f"The checkpoint in {self.directory}"
        advice = "Use another checkpoint directory, or delete this one to start again."
        if state["estimator"] != self.name:
            raise CheckpointError(
                f"{where} was written by {state['estimator']}, not {self.name}. "
                + advice
            )
        theirs, ours = state["config"], self.config
        keys = [
            k for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k)
        ]
        if keys:
            absent = "<absent>"
            changed = [
                f"{k}={ours.get(k, absent)} (checkpoint: {theirs.get(k, absent)})"
                for k in keys
            ]
            longer = (
                _LONGER.format(theirs["max_epochs"]) if keys == ["max_epochs"] else ""
            )
            raise CheckpointError(
                f"{where} was written with another configuration: "
                + "; ".join(changed)
                + ". "
                + longer
                + advice
                + " "
                + _CANDIDATES
            )
        differs = [k for k in data if state["data"].get(k) != data[k]]
        if differs:
            raise CheckpointError(
                f"{where} was written for other training data ({', '.join(differs)} "
                "differ). " + advice + " " + _CLONES
            )

    # -- writing ---------------------------------------------------------------------
    def write(self, state):
        """Write ``state`` atomically, the disk part in the background.

        The state is serialised here (a consistent copy of the live tensors);
        writing, flushing to disk and renaming happen in a thread while the
        next epoch trains, one write at a time. A failed write (full disk,
        permissions) warns and keeps the previous checkpoint.
        """
        buffer = io.BytesIO()
        torch.save(state, buffer)
        if not self.checked_ or not _plainly_safe(state):
            # A state that only a full unpickler reads could never be resumed:
            # say so at the epoch it appears rather than after a crash. The
            # first state is read back; later ones too when they hold a value
            # of another type than those that always load (a callback may
            # record a date from some epoch on).
            try:
                torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
            except Exception as exc:
                where = _first_unsafe(state)
                detail = f"it holds {where}" if where else " ".join(str(exc).split())
                raise CheckpointError(
                    f"The checkpoint state of epoch {state['epoch']} cannot be "
                    f"stored safely: {detail}. A callback's state_dict() and values "
                    "recorded in the history must be numbers, strings, tensors and "
                    "lists or dicts of them."
                ) from None
            self.checked_ = True
        self.wait()
        self.writer_ = threading.Thread(
            target=self._write_bytes,
            args=(buffer.getbuffer(), state["epoch"]),
            name="skestimators-checkpoint",
            daemon=True,
        )
        self.writer_.start()

    def _write_bytes(self, data, epoch):
        tmp = self.directory / f".{_FILE}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            try:
                tmp.unlink()
            except OSError:
                pass
            self.failure_ = (epoch, exc)

    def wait(self):
        """Wait for the write in progress; warn if the last one failed."""
        writer, self.writer_ = self.writer_, None
        if writer is not None:
            writer.join()
        failure, self.failure_ = self.failure_, None
        if failure is not None and failure[0] != self.warned_:
            epoch, exc = failure
            self.warned_ = epoch  # the final write repeats the last epoch's
            kept = (
                "the previous checkpoint is kept"
                if self.path.exists()
                else "no checkpoint has been written yet"
            )
            warnings.warn(
                f"Could not write the checkpoint {self.path} after epoch {epoch} "
                f"({exc.strerror or exc}); training goes on and {kept}.",
                CheckpointWarning,
                stacklevel=3,
            )


#: Why two fits meet in one directory, most often.
_CLONES = (
    "Cross-validation and searches clone the estimator with its checkpoint "
    "directory, and each fold trains on other data: name the data in the "
    "directory, checkpoint='runs/{data}' (a search: 'runs/{params}-{data}'), "
    "to give each fold its own, or set checkpoint=None."
)
#: How to train a run for more epochs than its checkpoint was written for.
_LONGER = (
    "To train that run longer, fit with max_epochs={} (the run is read back), "
    "then set warm_start=True and max_epochs=<the epochs to add> and fit again "
    "(a warm start continues from the weights reached, without a checkpoint). "
)
_CANDIDATES = (
    "A search's candidates differ in their parameters (or callbacks): name "
    "them in the directory, checkpoint='runs/{params}-{data}', to give each "
    "its own."
)


# -- the callbacks ---------------------------------------------------------------------
def _stateful(net):
    """The callbacks whose state a checkpoint keeps (those with a state_dict)."""
    return [
        (name, cb)
        for name, cb in net.callbacks_
        if callable(getattr(cb, "state_dict", None))
        and callable(getattr(cb, "load_state_dict", None))
    ]


def _rng_states(net):
    device = torch.device(net.device)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "batches": None
        if net.batch_generator is None
        else net.batch_generator.get_state(),
        # Data-parallel training draws the order of samples from its own stream.
        "shuffle": None
        if net.shuffle_generator is None
        else net.shuffle_generator.get_state(),
    }


class SaveCheckpoint(Callback):
    """Write a checkpoint at the end of every epoch and at the end of training.

    Parameters
    ----------
    store : CheckpointStore
        The locked directory.
    header : dict
        Fingerprints and seed, written into every checkpoint.
    max_epochs : int
        Epoch budget: a checkpoint at this epoch is complete.
    """

    def __init__(self, store, header, max_epochs):
        self.store = store
        self.header = header
        self.max_epochs = max_epochs

    def _state(self, net, done):
        scaler = net.grad_scaler_
        return {
            "format": FORMAT,
            **self.header,
            "epoch": len(net.history),
            "done": done,
            "module": net.module_.state_dict(),
            "optimizer": _plain_optimizer(net.optimizer_.state_dict()),
            "grad_scaler": None if scaler is None else scaler.state_dict(),
            "callbacks": {name: _plain(cb.state_dict()) for name, cb in _stateful(net)},
            "history": self._packer().pack(net.history),
            # the untrained network's loss, for the blow-up check at the end
            "first_batch_loss": net.__dict__.get("first_batch_loss_"),
            "rng": _rng_states(net),
        }

    def _packer(self):
        """The history's packer, which keeps past epochs converted (rows are
        not expected to change once a later epoch has begun)."""
        if getattr(self, "packer_", None) is None:
            self.packer_ = HistoryPacker(_plain)
        return self.packer_

    def _complete(self, net):
        # A validation loss never finite fails the fit: not a finished one
        # for a rerun to reload.
        if never_finite(validation_losses(net.history)):
            return False
        early = dict(net.callbacks_).get("early_stopping")
        stopped = early is not None and early.stopped_
        return stopped or len(net.history) >= self.max_epochs

    def on_epoch_end(self, net, **kwargs):
        # Weights the epoch's last update made non-finite are not kept: the
        # fit raises, and a rerun resumes from the last finite epoch.
        if finite_weights(net):
            self.store.write(self._state(net, done=self._complete(net)))

    def on_train_end(self, net, **kwargs):
        row = net.history[-1] if net.history else {}
        stopped = net.__dict__.get("_stopped_by_callback", False)  # a user's stop
        sound = finite_weights(net) and not never_finite(validation_losses(net.history))
        if "train_loss" in row and sound and (stopped or self._complete(net)):
            # Training is over (best weights restored): a later fit loads this
            # as its history_. Every row is converted afresh, once per fit, so
            # that a past row a callback edited is stored as it now is.
            self.packer_ = None
            self.store.write(self._state(net, done=True))

    def __getstate__(self):
        state = self.__dict__.copy()
        state["store"] = None  # the lock stays with the process that holds it
        state["packer_"] = None  # copies of the history's rows
        return state


class ResumeCheckpoint(Callback):
    """Restore a checkpoint when training begins.

    The network, optimizer, history, random streams and the engine's own
    callbacks (placed before this one) are restored at ``on_train_begin``,
    after those callbacks set up their state. The user's callbacks (placed
    after it) set up theirs in their own ``on_train_begin``, which would wipe
    a state restored earlier: theirs is restored when the first epoch begins.
    """

    def __init__(self, state):
        self.state = state

    def on_train_begin(self, net, **kwargs):
        state, self.state = self.state, None  # used once; not kept in pickles
        self.pending_ = {}
        if state is None:
            return
        names = [name for name, _ in net.callbacks_]
        mine = names.index("resume") if "resume" in names else len(names)
        later = set(names[mine + 1 :])
        try:
            net.module_.load_state_dict(state["module"])
            net.optimizer_.load_state_dict(state["optimizer"])
            if state["grad_scaler"] is not None and net.grad_scaler_ is not None:
                net.grad_scaler_.load_state_dict(state["grad_scaler"])
            callbacks = dict(_stateful(net))
            for name, cb_state in state["callbacks"].items():
                if name in later:
                    self.pending_[name] = cb_state
                elif name in callbacks:
                    callbacks[name].load_state_dict(_to_device(cb_state, net.device))
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise _mismatch(exc) from None
        net.history.clear()
        net.history.extend(unpack_history(state["history"]))
        net.first_batch_loss_ = state.get("first_batch_loss")
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and torch.device(net.device).type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], torch.device(net.device))
        shuffle = rng.get("shuffle")
        if net.shuffle_generator is not None:
            order = rng["batches"] if shuffle is None else shuffle
            if order is not None:
                net.shuffle_generator.set_state(order)
            if rng["batches"] is not None and net.batch_generator is not None:
                net.batch_generator.set_state(rng["batches"])
        elif net.batch_generator is not None:
            # One stream for order and augmentation (a data-parallel
            # checkpoint resumed in one process continues its order).
            state = rng["batches"] if shuffle is None else shuffle
            if state is not None:
                net.batch_generator.set_state(state)

    def on_epoch_begin(self, net, **kwargs):
        self._restore_pending(net)

    def on_train_end(self, net, **kwargs):
        # A complete checkpoint trains no epoch: the user's callbacks see their
        # state at the end (and the final checkpoint keeps it).
        self._restore_pending(net)

    def _restore_pending(self, net):
        pending, self.pending_ = getattr(self, "pending_", {}), {}
        callbacks = dict(_stateful(net))
        try:
            for name, cb_state in pending.items():
                if name in callbacks:
                    callbacks[name].load_state_dict(_to_device(cb_state, net.device))
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise _mismatch(exc) from None


#: Exact types (not their subclasses: an IntEnum, a namedtuple or NumPy's
#: float64 is refused) that ``torch.load(weights_only=True)`` always reads.
_SAFE_TYPES = frozenset(
    {
        type(None), bool, int, float, str, torch.Tensor, torch.nn.Parameter,
        torch.Size, torch.dtype, torch.device,
    }
)  # fmt: skip


_SCALARS = frozenset({type(None), bool, int, float, str})


def _plainly_safe(value) -> bool:
    """Whether ``value`` holds only types that ``torch.load(weights_only=True)``
    always reads: numbers, strings, tensors, and lists, tuples and dicts of
    them. False means "read it back to know", not "unsafe"."""
    kind = type(value)
    if kind in _SAFE_TYPES:
        return True
    if kind in (dict, OrderedDict):
        return all(type(k) in (str, int) and _plainly_safe(v) for k, v in value.items())
    if kind in (list, tuple):
        return all(_plainly_safe(v) for v in value)
    return False


def _first_unsafe(value, where="state"):
    """Where ``value`` first holds a type that ``_plainly_safe`` does not
    know, as ``state['callbacks']['logger']['since'] (datetime.date)``."""
    kind = type(value)
    if kind in _SAFE_TYPES:
        return None
    if kind in (dict, OrderedDict):
        for key, item in value.items():
            if type(key) not in (str, int):
                return f"a key {key!r} ({type(key).__qualname__}) in {where}"
            found = _first_unsafe(item, f"{where}[{key!r}]")
            if found:
                return found
        return None
    if kind in (list, tuple):
        for i, item in enumerate(value):
            found = _first_unsafe(item, f"{where}[{i}]")
            if found:
                return found
        return None
    return f"{where} ({kind.__module__}.{kind.__qualname__})"


def _plain_optimizer(state):
    """The optimizer's state with NumPy numbers in its parameter groups as
    Python numbers (a learning rate from ``np.logspace`` or a SciPy
    distribution); its tensors are left as they are."""
    groups = [_plain(group) for group in state["param_groups"]]
    return {**state, "param_groups": groups}


def _mismatch(exc) -> CheckpointError:
    detail = " ".join(str(exc).split())[:500].rstrip(".")
    return CheckpointError(
        "The checkpoint does not fit this network, optimizer or callback "
        f"({type(exc).__name__}: {detail}). Their code changed since it was "
        "written (a layer added to the module class, say); delete the "
        "checkpoint, or use another directory, to start again."
    )


def _to_device(value, device):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return type(value)((k, _to_device(v, device)) for k, v in value.items())
    return value


def _plain(value):
    """``value`` with NumPy scalars and arrays as Python numbers and lists
    (loadable with ``weights_only``)."""
    if type(value) in _SCALARS:  # most history values: nothing to convert
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return type(value)((k, _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value
