"""The engine's own skorch callbacks.

They run beside the user's callbacks (see :func:`._config.training_callbacks`
for the order). Early stopping and the learning-rate schedule are skorch's,
adapted in two ways: epochs without a validation split (``partial_fit``)
neither count towards early stopping nor step a schedule that follows the
validation loss, and early stopping only *flags* the stop, so that every
callback (loggers, checkpoints) still sees the last epoch before
:class:`StopTraining` ends training.
"""

from __future__ import annotations

import copy
import warnings

from skorch.callbacks import Callback
from skorch.callbacks import EarlyStopping as _SkorchEarlyStopping
from skorch.callbacks import LRScheduler as _SkorchLRScheduler
from torch.optim.lr_scheduler import CosineAnnealingLR, ReduceLROnPlateau


class EarlyStopping(_SkorchEarlyStopping):
    """skorch's early stopping that flags the stop in ``stopped_``.

    An epoch whose history lacks the monitored value is skipped:
    ``partial_fit`` trains without a validation split.
    """

    def on_train_begin(self, net, **kwargs):
        super().on_train_begin(net, **kwargs)
        self.stopped_ = False

    def on_epoch_end(self, net, **kwargs):
        # A NaN validation loss counts as no improvement (skorch compares it).
        if self.monitor not in net.history[-1]:
            return
        try:
            super().on_epoch_end(net, **kwargs)
        except KeyboardInterrupt:  # skorch's way to stop; StopTraining does it
            self.stopped_ = True

    def state_dict(self):
        """What a checkpoint needs to continue (plain values and tensors)."""
        return {
            "misses_": self.misses_,
            "dynamic_threshold_": self.dynamic_threshold_,
            "best_epoch_": self.best_epoch_,
            "best_model_weights_": self.best_model_weights_,
            "stopped_": self.stopped_,
        }

    def load_state_dict(self, state):
        for key, value in state.items():
            setattr(self, key, value)

    def __getstate__(self):
        # The best weights are pickled on the CPU: a model trained on a GPU
        # then loads where there is none (load_state_dict copies them back).
        state = self.__dict__.copy()
        best = state.get("best_model_weights_")
        if best is not None:
            state["best_model_weights_"] = {
                key: value.detach().cpu() if hasattr(value, "detach") else value
                for key, value in best.items()
            }
        return state


class _Rates:
    """An optimizer's learning rates without its parameters or state.

    What a pickled schedule keeps of its optimizer: the network's optimizer
    is pickled apart by skorch (and mapped to the CPU where there is no GPU),
    and :func:`_drives` rebinds the schedule to it by these rates.
    """

    def __init__(self, optimizer):
        self.param_groups = [{"lr": group["lr"]} for group in optimizer.param_groups]


def _drives(schedule, optimizer):
    """Whether ``schedule`` can continue on ``optimizer`` as it is.

    True when it drives this optimizer, or an unpickled copy of it: skorch
    pickles the optimizer apart from the callbacks, so after ``pickle``,
    ``joblib`` or ``copy.deepcopy`` the schedule holds a twin at the same
    learning rates, and is rebound to the network's optimizer (a replay
    would apply its decay a second time). An optimizer at other rates (a
    network rebuilt from a safe model file, back at the initial rates) needs
    the schedule replayed: False.
    """
    if schedule is None:
        return False
    if schedule.optimizer is optimizer:
        return True
    rates = [group["lr"] for group in optimizer.param_groups]
    if [group["lr"] for group in schedule.optimizer.param_groups] != rates:
        return False
    schedule.optimizer = optimizer
    return True


class LRScheduler(_SkorchLRScheduler):
    """skorch's scheduler callback, continued exactly by ``partial_fit``.

    skorch rebuilds the schedule at every ``fit`` call, resumed at the epoch
    count: a schedule stepped every batch (one-cycle) jumped back mid-cycle,
    and torch's chainable schedules (step, cosine) applied one step twice.
    Here a schedule continues where it stopped; a network rebuilt from a
    safe model file (its optimizer back at the initial learning rates)
    replays its schedule to the step reached. A one-cycle schedule
    holds its final rate once it has run its ``total_steps``, and training
    that would start past its end is refused with a clear error. The
    engine's ``"cosine"`` (:class:`CosineWithRestarts`), once it has run its
    ``T_max`` epochs, starts a new cycle from the initial rate at the next
    epoch (a warm restart, as in SGDR [1]_); torch's cosine would rise back
    slowly from a first epoch at rate 0. A
    ``ReduceLROnPlateau`` schedule steps on the monitored value, which an
    epoch trained by ``partial_fit`` (no validation split) does not have;
    after a safe model file it is replayed on the monitored values of the history,
    so that its rate, best value and epochs without progress are those it
    had reached (a callable ``monitor``, whose values cannot be recomputed,
    restarts at the initial rate). After ``pickle`` or ``copy.deepcopy``
    every schedule continues where it stopped.

    References
    ----------
    .. [1] I. Loshchilov and F. Hutter, "SGDR: Stochastic Gradient Descent
       with Warm Restarts", ICLR 2017.
    """

    def on_train_begin(self, net, **kwargs):
        if not len(net.history) or "last_epoch" in self.kwargs:
            super().on_train_begin(net, **kwargs)
            return
        if self.policy_ is ReduceLROnPlateau:
            self._continue_plateau(net, **kwargs)
            return
        self.batch_idx_ = trained_batches(net.history)
        steps = self.batch_idx_ if self.step_every == "batch" else len(net.history)
        total = _total_steps(self.kwargs) if self.step_every == "batch" else None
        if total is not None:
            if steps >= total:
                raise ValueError(
                    f"The learning-rate schedule {self.policy_.__name__} has run "
                    f"all its {total} steps (total_steps): training cannot "
                    "continue it. Fit again, with a larger max_epochs or "
                    "lr_scheduler_params={'total_steps': ...} that covers the "
                    "epochs to come, or choose another lr_scheduler."
                )
            steps = min(steps, total - 1)  # it holds its final rate after
        if _drives(self.lr_scheduler_, net.optimizer_):
            return  # continue the schedule where it stopped
        cycle = self._cosine_cycle()
        if cycle is not None and steps > cycle:
            steps = (steps - 1) % cycle + 1  # the epochs of the current cycle
        schedule = self.policy_(net.optimizer_, **self.kwargs)
        with warnings.catch_warnings():
            # "lr_scheduler.step() before optimizer.step()": a replay, on purpose.
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(steps):
                schedule.step()
        self.lr_scheduler_ = schedule

    def _continue_plateau(self, net, **kwargs):
        self.batch_idx_ = trained_batches(net.history)
        if _drives(self.lr_scheduler_, net.optimizer_):
            return  # continue the schedule where it stopped
        if callable(self.monitor):  # the values it saw cannot be recomputed
            super().on_train_begin(net, **kwargs)
            return
        schedule = self.policy_(net.optimizer_, **self.kwargs)
        for row in net.history:
            if self.monitor in row:  # the epochs that stepped it
                schedule.step(row[self.monitor])
        self.lr_scheduler_ = schedule

    def on_batch_end(self, net, training, **kwargs):
        total = getattr(self.lr_scheduler_, "total_steps", None)
        if (
            training
            and self.step_every == "batch"
            and total is not None
            and self.lr_scheduler_.last_epoch >= total - 1
        ):
            # The schedule is at its final rate (step total_steps - 1); torch
            # would step on, back up a cosine, then raise: keep the rate.
            if self.event_name is not None:
                net.history.record_batch(
                    self.event_name, net.optimizer_.param_groups[0]["lr"]
                )
            self.batch_idx_ += 1
            return
        super().on_batch_end(net, training, **kwargs)

    def _cosine_cycle(self):
        """Epochs per cycle of a restarting cosine schedule, else None."""
        return None

    def on_epoch_end(self, net, **kwargs):
        if (
            self.step_every == "epoch"
            and isinstance(self.lr_scheduler_, ReduceLROnPlateau)
            and isinstance(self.monitor, str)
            and self.monitor not in net.history[-1]
        ):
            return
        super().on_epoch_end(net, **kwargs)

    def state_dict(self):
        return {
            "scheduler": self.lr_scheduler_.state_dict(),
            "batch_idx_": self.batch_idx_,
        }

    def __getstate__(self):
        # A copy of the optimizer's parameters and moments (on the GPU, for a
        # model trained there) would travel with the schedule: its rates do.
        state = self.__dict__.copy()
        schedule = state.get("lr_scheduler_")
        optimizer = getattr(schedule, "optimizer", None)
        if optimizer is not None and not isinstance(optimizer, _Rates):
            schedule = copy.copy(schedule)
            schedule.optimizer = _Rates(optimizer)
            state["lr_scheduler_"] = schedule
        return state

    def load_state_dict(self, state):
        self.lr_scheduler_.load_state_dict(state["scheduler"])
        self.batch_idx_ = state["batch_idx_"]


class StopTraining(Callback):
    """Ends training after an epoch in which early stopping flagged the stop."""

    def on_epoch_end(self, net, **kwargs):
        early = dict(net.callbacks_).get("early_stopping")
        if early is not None and early.stopped_:
            raise KeyboardInterrupt  # skorch ends the fit loop, then on_train_end


class EpochProgress(Callback):
    """A tqdm bar over epochs showing the latest losses (``verbose >= 1``)."""

    def __init__(self, total, desc=None):
        self.total = total
        self.desc = desc

    def on_train_begin(self, net, **kwargs):
        from tqdm.auto import tqdm

        self.bar_ = tqdm(
            total=self.total,
            initial=len(net.history),
            desc=self.desc,
            unit="epoch",
            leave=True,
        )

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        postfix = {k: f"{row[k]:.4g}" for k in ("train_loss", "valid_loss") if k in row}
        self.bar_.set_postfix(postfix, refresh=False)
        self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        self.bar_.close()

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("bar_", None)
        return state


def trained_batches(history):
    """Training batches run so far, from a skorch ``History``."""
    total = 0
    for row in history:
        count = row.get("train_batch_count")
        if count is None:
            count = sum(1 for batch in row.get("batches", ()) if "train_loss" in batch)
        total += int(count)
    return total


class CosineWithRestarts(LRScheduler):
    """The engine's ``"cosine"``: torch's ``CosineAnnealingLR``, restarted
    from the initial rate every ``T_max`` epochs (SGDR without the growing
    cycles). With the default ``T_max=max_epochs`` a fresh fit runs one
    cycle; a continuing fit past it (``warm_start``, ``partial_fit``) trains
    a new one, never at the final rate of 0."""

    def _cosine_cycle(self):
        if self.step_every == "epoch" and self.policy_ is CosineAnnealingLR:
            return int(self.kwargs.get("T_max", 0)) or None
        return None

    def on_epoch_begin(self, net, **kwargs):
        cycle = self._cosine_cycle()
        if cycle is not None and self.lr_scheduler_.last_epoch >= cycle:
            # A warm restart: the rates go back to their initial values
            # (which the new schedule starts from) and decay again.
            for group in net.optimizer_.param_groups:
                group["lr"] = group["initial_lr"]
            self.lr_scheduler_ = self.policy_(net.optimizer_, **self.kwargs)
        super().on_epoch_begin(net, **kwargs)


def _total_steps(params):
    """Steps of a one-cycle schedule from its keyword arguments, or None."""
    if params.get("total_steps") is not None:
        return int(params["total_steps"])
    if params.get("epochs") is not None and params.get("steps_per_epoch") is not None:
        return int(params["epochs"]) * int(params["steps_per_epoch"])
    return None
