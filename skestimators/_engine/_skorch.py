"""The skorch ``NeuralNet`` behind every estimator (the only module importing skorch).

skorch runs the training loop, the history, the callbacks (early stopping with
best weights, learning-rate schedules, timing) and the device-aware pickling.
This subclass replaces the parts that cost speed or break scikit-learn
conventions: data arrive pre-split as tensors and are batched by slicing,
the loss handles several named heads and sample weights, mixed precision and
gradient clipping live in the train step, batch-level history bookkeeping is
replaced by one epoch-level record, and a model trained on a GPU unpickles on
a CPU-only machine without a warning.
"""

from __future__ import annotations

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, EpochTimer, LRScheduler

from ._batching import BatchIterator
from ._device import autocast
from ._heads import head_metrics


class SplitData:
    """Training and validation data handed to ``partial_fit`` as one ``X``."""

    def __init__(self, train, valid=None):
        self.train = train
        self.valid = valid


class EngineNet(NeuralNet):
    """skorch ``NeuralNet`` driven by pre-converted tensors (private)."""

    def __init__(
        self,
        *args,
        batch_generator=None,
        amp_dtype=None,
        gradient_clip=None,
        head_groups=None,
        epoch_hooks=(),
        batch_transform=None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.batch_transform = batch_transform
        self.batch_generator = batch_generator
        self.amp_dtype = amp_dtype
        self.gradient_clip = gradient_clip
        self.head_groups = head_groups
        self.epoch_hooks = list(epoch_hooks)

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
            self.batch_size if training else max(self.batch_size, 256),
            shuffle=training,
            generator=self.batch_generator,
            device=torch.device(self.device),
            drop_single=training,
        )

    # -- steps -----------------------------------------------------------------------
    def get_loss(self, y_pred, y_true, X=None, training=False):
        # ``y_true`` is ``(targets, sample_weight)``, already tensors on the device.
        return self.criterion_(y_pred, y_true)

    def train_step(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = batch
        if self.batch_transform is not None:
            # Training-time augmentation: (X, (y, w)) -> (X, (y, w)), on the device.
            Xi, yi = self.batch_transform(Xi, yi, self.batch_generator)
        optimizer = self.optimizer_
        optimizer.zero_grad(set_to_none=True)
        with autocast(torch.device(self.device), self.amp_dtype):
            y_pred = self.infer(Xi)
            loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        scaler = getattr(self, "grad_scaler_", None)
        if scaler is not None:
            scaler.scale(loss).backward()
            if self.gradient_clip is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(
                    self.module_.parameters(), self.gradient_clip
                )
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if self.gradient_clip is not None:
                torch.nn.utils.clip_grad_norm_(
                    self.module_.parameters(), self.gradient_clip
                )
            optimizer.step()
        return {"loss": loss.detach(), "y_pred": y_pred}

    def validation_step(self, batch, **fit_params):
        self._set_training(False)
        Xi, yi = batch
        with (
            torch.inference_mode(),
            autocast(torch.device(self.device), self.amp_dtype),
        ):
            y_pred = self.infer(Xi)
            loss = self.get_loss(y_pred, yi, X=Xi, training=False)
        return {"loss": loss, "y_pred": y_pred}

    def _set_training(self, training=True):
        # Switching modes walks every submodule; do it once per epoch, not per batch.
        if getattr(self, "_training_mode", None) is not training:
            super()._set_training(training)
            self._training_mode = training

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if iterator is None:
            return
        self._training_mode = None
        losses, sizes = [], []
        outputs = [] if not training and self.head_groups else None
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            losses.append(step["loss"])
            sizes.append(_batch_len(batch[0]))
            if outputs is not None:
                outputs.append(step["y_pred"])
            self.notify("on_batch_end", batch=batch, training=training, **step)
        if not losses:
            return
        weights = torch.tensor(sizes, dtype=torch.float32)
        epoch_loss = (torch.stack(losses).float().cpu() * weights).sum() / weights.sum()
        self.history.record(prefix + "_loss", epoch_loss.item())
        if outputs:
            y_pred = _concat(outputs)
            for key, value in head_metrics(
                self.head_groups, y_pred, iterator.data.y, prefix=prefix
            ).items():
                self.history.record(key, value)

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_end(net, dataset_train, dataset_valid, **kwargs)
        for hook in self.epoch_hooks:
            hook(self)

    # -- pickling --------------------------------------------------------------------
    def __getstate__(self):
        state = super().__getstate__()
        state.pop("batch_generator", None)
        return state

    def __setstate__(self, state):
        device = state.get("device")
        if (
            device is not None
            and torch.device(device).type == "cuda"
            and (not torch.cuda.is_available())
        ):
            # A model trained on a GPU, scored on a CPU-only machine: map every
            # tensor to the CPU quietly (skorch would warn).
            state["device"] = "cpu"
        state.setdefault("batch_generator", None)
        super().__setstate__(state)


def _batch_len(X):
    first = next(iter(X.values())) if isinstance(X, dict) else X
    return int(first.shape[0])


def _concat(outputs):
    if isinstance(outputs[0], dict):
        return {k: torch.cat([o[k] for o in outputs]) for k in outputs[0]}
    return torch.cat(outputs)


class EpochProgress(Callback):
    """A tqdm bar over epochs showing the latest losses (``verbose >= 1``)."""

    def __init__(self, total, desc=None):
        self.total = total
        self.desc = desc

    def on_train_begin(self, net, **kwargs):
        from tqdm.auto import tqdm

        self.bar_ = tqdm(total=self.total, desc=self.desc, unit="epoch", leave=True)

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


__all__ = ["EngineNet", "SplitData", "EpochProgress", "EarlyStopping", "LRScheduler"]
