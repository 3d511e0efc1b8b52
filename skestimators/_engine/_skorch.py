"""The skorch ``NeuralNet`` behind every estimator.

skorch runs the training loop, the history, the callbacks (the engine's and
the user's) and the device-aware pickling. This subclass replaces, through
skorch's public methods, the parts that cost speed or break scikit-learn
conventions: data arrive pre-split as tensors and are batched by slicing
(``get_split_datasets``, ``get_iterator``), the loss handles several named
heads and sample weights (``get_loss``), mixed precision, gradient clipping
and the check for a diverging loss live in the train step (``train_step``),
batch-level history bookkeeping is replaced by one epoch-level record
(``run_single_epoch``), a fit that raises tells the callbacks that define
``on_train_failed`` (the loggers) before the error goes on (``partial_fit``),
and a model trained on a GPU unpickles on a CPU-only machine without a
warning (``__setstate__``).
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import warnings

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EpochTimer

from ._batching import BatchIterator
from ._device import _cpu_has_bfloat16, autocast, follow_thread_budget
from ._divergence import finite_weights, nonfinite_buffers
from ._heads import head_metrics
from ._history import (
    check_validation_losses,
    record_batches,
    record_best,
    validation_losses,
)
from ._placement import _predict_batch_size


class SplitData:
    """Training and validation data handed to ``partial_fit`` as one ``X``."""

    def __init__(self, train, valid=None):
        self.train = train
        self.valid = valid


class NonFiniteLoss(Exception):
    """Raised from the training loop at the first batch whose loss is not
    finite (or, ``value=None``, when the last update made the weights so)."""

    def __init__(self, epoch, batch, value):
        super().__init__(f"training loss {value} at epoch {epoch}, batch {batch}")
        self.epoch = epoch
        self.batch = batch
        self.value = value

    def describe(self):
        """What went wrong and where, for the messages of the estimator."""
        if self.value is None:
            return (
                "the weights became non-finite in the last update of epoch "
                f"{self.epoch} (batch {self.batch}), although its loss was finite"
            )
        return (
            f"the training loss became {self.value} at epoch {self.epoch}, "
            f"batch {self.batch}"
        )


class EngineNet(NeuralNet):
    """skorch ``NeuralNet`` driven by pre-converted tensors (private).

    Parameters beyond skorch's
    --------------------------
    batch_generator : torch.Generator or None
        Source of the batch order and augmentation randomness.
    amp_dtype : torch.dtype or None
        Autocast dtype (mixed precision).
    gradient_clip : float or None
        Global gradient-norm clipping.
    head_groups : list of HeadGroup
        Which outputs meet which targets (loss and validation metrics).
    batch_transform : callable or None
        Training-batch augmentation ``(X, (y, w), generator) -> (X, (y, w))``.
    estimator_name : str
        Class name of the estimator being trained (for loggers).
    estimator_params : dict
        The estimator's ``get_params(deep=False)`` (for loggers).
    """

    def __init__(
        self,
        *args,
        batch_generator=None,
        amp_dtype=None,
        gradient_clip=None,
        head_groups=None,
        batch_transform=None,
        estimator_name=None,
        estimator_params=None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.batch_transform = batch_transform
        self.batch_generator = batch_generator
        self.amp_dtype = amp_dtype
        self.gradient_clip = gradient_clip
        self.head_groups = head_groups
        self.estimator_name = estimator_name
        self.estimator_params = estimator_params
        # Set by the estimator for the duration of a data-parallel fit only.
        self.data_parallel = None
        self.shuffle_generator = None
        self.batch_share_ = 1.0

    def initialize(self):
        super().initialize()
        # Buffers not finite from the start (a causal mask of -inf) are no
        # divergence; the others (batch normalisation's statistics) are read.
        self.constant_nonfinite_ = nonfinite_buffers(self.module_)
        # skorch unpickles only these attributes onto the machine's device;
        # the module and criterion given (moved to the GPU in place), the
        # head groups' class weights and the gradient scaler hold GPU
        # tensors too, and a GPU model's pickle could not be loaded on a
        # CPU-only machine.
        self.cuda_dependent_attributes_ = list(
            dict.fromkeys(
                [*self.cuda_dependent_attributes_, *_DEVICE_DEPENDENT_ATTRIBUTES]
            )
        )
        device = torch.device(self.device)
        fp16 = device.type == "cuda" and self.amp_dtype == torch.float16
        # Gradient scaling keeps small float16 gradients from underflowing.
        self.grad_scaler_ = torch.amp.GradScaler("cuda") if fp16 else None
        # on_grad_computed costs a pass over the parameters: only when listened to.
        self.grad_listeners_ = [
            cb
            for _, cb in self.callbacks_
            if type(cb).on_grad_computed is not Callback.on_grad_computed
        ]
        return self

    # -- data ------------------------------------------------------------------------
    def get_default_callbacks(self):
        return [("epoch_timer", EpochTimer())]

    def check_data(self, X, y=None):
        pass

    def get_split_datasets(self, X, y=None, **fit_params):
        return X.train, X.valid

    def get_iterator(self, dataset, training=False):
        return BatchIterator(
            dataset,
            # Validation: the prediction batches (larger only for small samples).
            self.batch_size
            if training
            else _predict_batch_size(self.batch_size, dataset),
            shuffle=training,
            generator=self.batch_generator,
            device=torch.device(self.device),
            drop_single=training,
            shard=self.data_parallel if training else None,
            shuffle_generator=self.shuffle_generator,
        )

    # -- steps -----------------------------------------------------------------------
    def get_loss(self, y_pred, y_true, X=None, training=False):
        # ``y_true`` is ``(targets, sample_weight)``, already tensors on the device.
        return self.criterion_(y_pred, y_true)

    def train_step(self, batch, **fit_params):
        Xi, yi = batch
        if self.batch_transform is not None:
            # Training-time augmentation: (X, (y, w)) -> (X, (y, w)), on the device.
            Xi, yi = self.batch_transform(Xi, yi, self.batch_generator)
        optimizer = self.optimizer_
        optimizer.zero_grad(set_to_none=True)
        with autocast(torch.device(self.device), self.amp_dtype):
            y_pred = self.infer(Xi)
            loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        if not loss.requires_grad:
            raise ValueError(
                f"The training loss does not depend on any trainable parameter of "
                f"{type(self.module_).__name__}: its output carries no gradient "
                "(a forward that detaches its output, runs under torch.no_grad "
                "or goes through NumPy)."
            )
        scaler = self.grad_scaler_
        if scaler is not None:
            scaler.scale(loss).backward()
            loss = self._sync(loss)
            if self.gradient_clip is not None or self.grad_listeners_:
                scaler.unscale_(optimizer)
            self._after_backward(batch)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            loss = self._sync(loss)
            self._after_backward(batch)
            optimizer.step()
        return {"loss": loss.detach(), "y_pred": y_pred}

    def _sync(self, loss):
        """Data-parallel training: the gradients and loss of the whole batch."""
        if self.data_parallel is None:
            return loss
        params = [p for p in self.module_.parameters() if p.requires_grad]
        return self.data_parallel.sync_gradients(params, loss, self.batch_share_)

    def _after_backward(self, batch):
        if self.grad_listeners_:
            params = list(self.get_all_learnable_params())
            for cb in self.grad_listeners_:
                cb.on_grad_computed(
                    self, named_parameters=params, batch=batch, training=True
                )
        if self.gradient_clip is not None:
            torch.nn.utils.clip_grad_norm_(
                self.module_.parameters(), self.gradient_clip
            )

    def validation_step(self, batch, **fit_params):
        Xi, yi = batch
        with (
            torch.inference_mode(),
            autocast(torch.device(self.device), self.amp_dtype),
        ):
            y_pred = self.infer(Xi)
            loss = self.get_loss(y_pred, yi, X=Xi, training=False)
        return {"loss": loss, "y_pred": y_pred}

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        # skorch skips on_train_end when training raises: the loggers' runs
        # would stay open (W&B would close its run at exit as a success).
        # Callbacks that define on_train_failed are told, then the error
        # goes on unchanged. A diverging loss is left to the estimator, which
        # may restore the best epoch and end training normally.
        try:
            return super().partial_fit(X, y, classes=classes, **fit_params)
        except NonFiniteLoss:
            raise
        except BaseException as exc:
            tell_failed(self, exc)
            raise

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        # skorch's partial_fit swallows KeyboardInterrupt: it is how a
        # callback stops training (early stopping), and also what Ctrl-C
        # raises. The latter is flagged, for the estimator to raise again
        # once the callbacks have closed (checkpoints, loggers); the former
        # ends training as complete (a checkpoint says so).
        self._stopped_by_callback = False
        with _watch_sigint() as sigint:
            try:
                super().fit_loop(X, y, epochs=epochs, **fit_params)
                # Failures seen only once the epochs are done, raised before
                # on_train_end: the loggers then end their runs failed, and no
                # checkpoint is marked complete.
                check_finite_weights(self)
                check_validation_losses(validation_losses(self.history))
                return self
            except KeyboardInterrupt as exc:
                ctrl_c = sigint.received if sigint.watching else None
                if ctrl_c is None:  # no handler of ours: infer from the frame
                    ctrl_c = not _raised_by_callback(exc)
                if ctrl_c:
                    self._interrupted = True
                else:
                    self._stopped_by_callback = True
                    if self.history and "train_loss" not in self.history[-1]:
                        # Stopped mid-epoch: the epoch cut short is not one.
                        self.history.pop()
                    # Early stopping ends this way: a validation loss never
                    # finite fails the fit before on_train_end, as above.
                    check_validation_losses(validation_losses(self.history))
                raise

    def notify(self, method_name, **cb_kwargs):
        # After Ctrl-C, callbacks that define on_train_failed (the loggers)
        # are told the fit was interrupted instead of that it ended.
        if method_name != "on_train_end" or not self.__dict__.get("_interrupted"):
            if self.data_parallel is not None:
                return self._notify_together(method_name, **cb_kwargs)
            return super().notify(method_name, **cb_kwargs)
        self.on_train_end(self, **cb_kwargs)
        interrupt = KeyboardInterrupt("training interrupted")
        for _, callback in self.callbacks_:
            failed = getattr(callback, "on_train_failed", None)
            if failed is not None:
                failed(self, error=interrupt)
            else:
                callback.on_train_end(self, **cb_kwargs)

    def _notify_together(self, method_name, **cb_kwargs):
        """``notify`` in data-parallel training: no process fails alone.

        Checkpoints, loggers and progress run on process 0 only, so their
        errors happen there only; a process leaving training alone would
        leave the others waiting in their next collective call for the whole
        timeout. Errors of the callbacks are kept (the first one) and every
        callback still runs; the processes agree at the start of training
        and at the end of every epoch and of training, and all raise then.
        """
        if method_name == "on_train_begin":  # none left by a fit that failed
            self._deferred_error = None
        for callback in (self, *(cb for _, cb in self.callbacks_)):
            try:
                getattr(callback, method_name)(self, **cb_kwargs)
            except Exception as exc:  # raised at the next agreement
                if self.__dict__.get("_deferred_error") is None:
                    self._deferred_error = exc
        if method_name in ("on_train_begin", "on_epoch_end", "on_train_end"):
            error, self._deferred_error = self.__dict__.get("_deferred_error"), None
            self.data_parallel.agree(error, during="during training")

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        # skorch records every batch's loss with ``.item()`` (a device sync per
        # batch) and switches train/eval mode per batch; this records the epoch
        # mean once and switches modes once per epoch.
        if iterator is None:
            return
        parallel = self.data_parallel
        if training:
            follow_thread_budget()  # other jobs may have started or ended
            if parallel is not None:  # dropout and augmentation differ by process
                parallel.decorrelate(len(self.history), self.batch_generator)
        self.module_.train(training)
        self.criterion_.train(training)
        losses, sizes = [], []
        outputs = [] if not training and self.head_groups else None
        epoch = len(self.history)
        # Reading a loss on the host waits for the GPU: there, the losses are
        # checked every few batches (the first non-finite one is still named).
        every = 1 if torch.device(self.device).type == "cpu" else _CHECK_EVERY
        checked = 0
        first_weight = None
        if training and epoch == 1:
            self.first_batch_loss_ = None
        for i, batch in enumerate(iterator):
            if training and epoch == 1 and i == 0:
                first_weight = _mean_weight(batch)
            self.notify("on_batch_begin", batch=batch, training=training)
            size = _batch_len(batch[0])
            if training and parallel is not None:
                # The loss returned is that of the whole (global) batch.
                self.batch_share_ = size / iterator.global_size
                size = iterator.global_size
            step = step_fn(batch, **fit_params)
            losses.append(step["loss"])
            sizes.append(size)
            if training and len(losses) - checked >= every:
                checked = _check_losses(losses, checked, epoch)
            if outputs is not None:
                outputs.append(step["y_pred"])
            self.notify("on_batch_end", batch=batch, training=training, **step)
        if training:
            _check_losses(losses, checked, epoch)
        if training and parallel is not None:
            parallel.broadcast_buffers(self.module_)  # validation alike everywhere
        self.history.record(prefix + "_batch_count", len(losses))
        if not losses:
            return
        if training and epoch == 1 and first_weight:
            # The untrained network's loss (one sync), as a weighted mean: the
            # batch loss is mean(w * l), small for a batch of light samples.
            # Not a history key: present in one row only, it would shift the
            # columns of skorch's PrintLog table.
            self.first_batch_loss_ = losses[0].item() / first_weight
        weights = torch.tensor(sizes, dtype=torch.float32)
        batch_losses = torch.stack(losses).float().cpu()
        epoch_loss = (batch_losses * weights).sum() / weights.sum()
        record_batches(self.history, prefix, batch_losses.tolist(), sizes, training)
        scores = {prefix + "_loss": epoch_loss.item()}
        if outputs:
            y_pred = _concat(outputs)
            scores.update(
                head_metrics(self.head_groups, y_pred, iterator.data.y, prefix=prefix)
            )
        if not training and parallel is not None:
            # Early stopping and schedules read these: the same everywhere,
            # even where the GPU computes the validation a little differently
            # in each process (one stopping alone would leave the others
            # waiting).
            scores = parallel.broadcast_scores(scores)
        for key, value in scores.items():
            self.history.record(key, value)
        record_best(self.history, prefix + "_loss")

    # -- pickling --------------------------------------------------------------------
    def __getstate__(self):
        state = super().__getstate__()
        state.pop("batch_generator", None)
        state["data_parallel"] = state["shuffle_generator"] = None
        return state

    def __setstate__(self, state):
        device = state.get("device")
        to_cpu = (
            device is not None
            and torch.device(device).type == "cuda"
            and (not torch.cuda.is_available())
        )
        if to_cpu:
            # A model trained on a GPU, scored on a CPU-only machine: map every
            # tensor to the CPU quietly (skorch would warn). float16 autocast
            # and gradient scaling are for GPUs (the CPU fit refuses them).
            state["device"] = "cpu"
            if state.get("amp_dtype") == torch.float16:
                state["amp_dtype"] = None
        on_cpu = (
            state.get("device") is None or torch.device(state["device"]).type == "cpu"
        )
        if (
            on_cpu
            and state.get("amp_dtype") == torch.bfloat16
            and not _cpu_has_bfloat16()
        ):
            state["amp_dtype"] = None  # oneDNN has no bfloat16 LSTM on this CPU
        state.setdefault("batch_generator", None)
        state.setdefault("data_parallel", None)
        state.setdefault("shuffle_generator", None)
        state.setdefault("batch_share_", 1.0)
        state.setdefault("first_batch_loss_", None)
        super().__setstate__(state)
        # Nets pickled before these attributes existed.
        self.__dict__.setdefault("grad_scaler_", None)
        if to_cpu:
            self.grad_scaler_ = None
        self.__dict__.setdefault("grad_listeners_", [])


#: Attributes (prefixes) besides skorch's whose tensors may be on the GPU.
#: Not the callbacks: skorch pickles these attributes in a pickle of their
#: own, and a callback holding the network would pickle it again without end;
#: the engine's callbacks pickle their tensors on the CPU instead.
_DEVICE_DEPENDENT_ATTRIBUTES = (
    "module",
    "criterion",
    "head_groups",
    "grad_scaler_",
)

_CHECK_EVERY = 32


class _SigintWatch:
    watching = False
    received = False


@contextlib.contextmanager
def _watch_sigint():
    """Note whether Ctrl-C (SIGINT) arrives, keeping its usual effect.

    Only in the main thread and when Python's own handler is installed;
    elsewhere ``watching`` stays False and the caller infers the cause.
    """
    watch = _SigintWatch()
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield watch
        return

    def handler(signum, frame):
        watch.received = True
        signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    watch.watching = True
    try:
        yield watch
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def check_finite_weights(net):
    """Raise :class:`NonFiniteLoss` when training left non-finite weights (the
    last step's loss was finite, its update was not)."""
    if not finite_weights(net):
        last = net.history[-1] if net.history else {}
        raise NonFiniteLoss(len(net.history), last.get("train_batch_count", 0), None)


def tell_failed(net, error):
    """``on_train_failed(net, error=error)`` for the callbacks that define it
    (the loggers end their runs failed, or killed after Ctrl-C).

    A callback that fails in turn is reported with a warning: the caller
    goes on raising ``error``, not that callback's error.
    """
    for name, callback in getattr(net, "callbacks_", None) or ():
        failed = getattr(callback, "on_train_failed", None)
        if failed is None:
            continue
        try:
            failed(net, error=error)
        except Exception as exc:
            warnings.warn(
                f"Callback {name!r} could not be told that training failed "
                f"({type(exc).__name__}: {exc}).",
                UserWarning,
                stacklevel=3,
            )


def _raised_by_callback(exc):
    """Whether ``exc`` was raised by a callback's own code (a deliberate stop)
    rather than wherever the program was when interrupted (Ctrl-C)."""
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return isinstance(tb.tb_frame.f_locals.get("self"), Callback)


def _check_losses(losses, start, epoch):
    """Raise :class:`NonFiniteLoss` at the first non-finite loss from ``start`` on.

    Returns the number of losses checked.
    """
    if len(losses) <= start:
        return start
    if len(losses) == start + 1:  # one loss (each batch on a CPU): no stack
        value = losses[start].item()
        if not math.isfinite(value):
            raise NonFiniteLoss(epoch, start + 1, value)
        return len(losses)
    recent = torch.stack(losses[start:])
    finite = torch.isfinite(recent)
    if not bool(finite.all()):
        first = int(torch.nonzero(~finite)[0, 0])
        raise NonFiniteLoss(epoch, start + first + 1, float(recent[first]))
    return len(losses)


def _mean_weight(batch):
    """Mean sample weight of a training batch ``(X, (y, w))`` (1 without)."""
    target = batch[1]
    weight = target[1] if isinstance(target, (tuple, list)) else None
    return 1.0 if weight is None else float(weight.float().mean())


def _batch_len(X):
    first = next(iter(X.values())) if isinstance(X, dict) else X
    return int(first.shape[0])


def _concat(outputs):
    if isinstance(outputs[0], dict):
        return {k: torch.cat([o[k] for o in outputs]) for k in outputs[0]}
    return torch.cat(outputs)


__all__ = ["EngineNet", "NonFiniteLoss", "SplitData"]
