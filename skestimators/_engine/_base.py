"""Fit and predict plumbing shared by every network estimator of the package.

Public estimators subclass :class:`BaseNet`, declare their own explicit
``__init__`` parameters and implement or override these hooks:

``_prepare_targets(y, *, fitting, n_samples, classes)``
    validate ``y`` and return ``(y_tensor, head_groups, n_outputs, y_strat)``;
``_make_module(input_shape, n_outputs)``
    build the ``torch.nn.Module`` (default: ``module`` / ``module_params``);
``_prepare_X(X, *, reset, finite)``
    domain conversion of ``X`` before the generic checks (images, patches);
    ``finite=False`` (prediction) leaves NaN/inf to the per-batch check;
``_batch_transform()``
    a picklable training-batch transform (augmentation), or None.

``predict``/``predict_proba`` read the raw output of ``_forward(X)``.
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._batching import TensorData, data_nbytes, to_tensor
from ._config import resolve_optimizer, training_callbacks, validation_indices
from ._device import amp_dtype, autocast, resolve_device, torch_threads
from ._heads import HeadsLoss
from ._skorch import EngineNet, SplitData, _concat
from ._targets import to_dict_groups
from ._validation import (
    check_finite_batch,
    check_inputs,
    check_sample_weight_array,
    input_shape_for_module,
    n_samples_of,
)

# Parameter constraints shared by every network estimator.
COMMON_CONSTRAINTS = {
    "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
    "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
    "lr": [Interval(numbers.Real, 0, None, closed="neither")],
    "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
    "optimizer": [StrOptions({"adam", "adamw", "sgd", "rmsprop"}), type],
    "lr_scheduler": [
        None,
        StrOptions({"cosine", "step", "plateau", "onecycle"}),
        type,
    ],
    "lr_scheduler_params": [None, dict],
    "early_stopping": ["boolean"],
    "validation_fraction": [None, Interval(numbers.Real, 0, 1, closed="neither")],
    "validation_cv": [None, "cv_object"],
    "patience": [Interval(numbers.Integral, 1, None, closed="left")],
    "tol": [Interval(numbers.Real, 0, None, closed="left")],
    "gradient_clip": [None, Interval(numbers.Real, 0, None, closed="neither")],
    "device": [str, torch.device],
    "amp": [None, StrOptions({"bf16", "fp16"})],
    "warm_start": ["boolean"],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


def instantiate_module(module, module_params, input_shape, n_outputs, default):
    """Build the network from a class, an instance, or None (``default``)."""
    params = dict(module_params or {})
    if module is None:
        module = default
    if isinstance(module, torch.nn.Module):
        if params:
            raise ValueError(
                "module_params can only be used with a module class, not an "
                "instance; configure the instance directly."
            )
        return copy.deepcopy(module)
    if not (isinstance(module, type) and issubclass(module, torch.nn.Module)):
        raise TypeError(
            f"module must be a torch.nn.Module subclass or instance, got {module!r}."
        )
    accepted = inspect.signature(module.__init__).parameters
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    for name, value in (("input_shape", input_shape), ("n_outputs", n_outputs)):
        if (name in accepted or takes_kwargs) and name not in params:
            params[name] = value
    try:
        return module(**params)
    except TypeError as exc:
        raise TypeError(
            f"Could not build {module.__name__}(**{params}): {exc}"
        ) from None


def _tensors(X):
    if isinstance(X, dict):
        return {k: to_tensor(v) for k, v in X.items()}
    return to_tensor(X)


class BaseNet(BaseEstimator):
    """Shared plumbing; not public. Subclasses define ``__init__`` explicitly."""

    _parameter_constraints: dict = dict(COMMON_CONSTRAINTS)
    _default_module = None

    # -- hooks for subclasses ----------------------------------------------------------
    def _make_module(self, input_shape, n_outputs):
        return instantiate_module(
            self.module,
            self.module_params,
            input_shape,
            n_outputs,
            self._default_module,
        )

    # -- fitting -----------------------------------------------------------------------
    def _prepare_X(self, X, *, reset, finite=True):
        """Domain-specific conversion and validation of ``X`` before the generic
        checks (image layouts, patch cubes). Returns what ``check_inputs`` reads."""
        return X

    def _fit(
        self, X, y, sample_weight=None, groups=None, *, partial=False, classes=None
    ):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None."
            )
        continuing = (partial or self.warm_start) and hasattr(self, "net_")
        X = self._prepare_X(X, reset=not continuing, finite=True)
        Xv = check_inputs(self, X, reset=not continuing)
        n_samples = n_samples_of(Xv)
        y_t, groups_spec, n_outputs, y_strat = self._prepare_targets(
            y, fitting=not continuing, n_samples=n_samples, classes=classes
        )
        weights = None
        if sample_weight is not None:
            weights = torch.from_numpy(
                check_sample_weight_array(sample_weight, n_samples)
            )
        weights = self._class_sample_weights(y_strat, weights)
        data = TensorData(_tensors(Xv), y_t, weights)

        device = resolve_device(self.device)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(0, 2**31 - 1))
        split = (
            None
            if partial
            else validation_indices(
                self,
                n_samples,
                y_strat,
                None if groups is None else np.asarray(groups),
                seed,
            )
        )
        train, valid = (
            (data, None)
            if split is None
            else (data.subset(split[0]), data.subset(split[1]))
        )

        cuda_devices = [device] if device.type == "cuda" else []
        with torch_threads(), torch.random.fork_rng(devices=cuda_devices):
            torch.manual_seed(seed)
            generator = torch.Generator().manual_seed(seed)
            if not continuing:
                module = self._make_module(input_shape_for_module(Xv), n_outputs)
                groups_spec = self._bind_outputs(module, train, groups_spec)
                self.net_ = self._make_net(
                    module,
                    groups_spec,
                    device,
                    len(train),
                    valid is not None,
                    epochs=1 if partial else self.max_epochs,
                )
                self.net_.initialize()
                if device.type == "cuda" and self.net_.amp_dtype == torch.float16:
                    self.net_.grad_scaler_ = torch.amp.GradScaler("cuda")
            net = self.net_
            net.batch_generator = generator
            train, valid = _place(train, device), _place(valid, device)
            net.partial_fit(
                SplitData(train, valid), epochs=1 if partial else self.max_epochs
            )
        self._after_fit(net)
        return self

    def _make_net(self, module, groups_spec, device, n_train, has_valid, epochs):
        n_batches = -(-n_train // self.batch_size)
        return EngineNet(
            module=module,
            criterion=HeadsLoss(groups_spec),
            optimizer=resolve_optimizer(self.optimizer),
            optimizer__weight_decay=self.weight_decay,
            lr=self.lr,
            max_epochs=epochs,
            batch_size=self.batch_size,
            train_split=None,
            callbacks=training_callbacks(
                self, has_valid=has_valid, n_batches=n_batches
            ),
            device=str(device),
            verbose=0,
            amp_dtype=amp_dtype(self.amp, device),
            gradient_clip=self.gradient_clip,
            head_groups=groups_spec,
            epoch_hooks=getattr(self, "_epoch_hooks", ()),
            batch_transform=self._batch_transform(),
        )

    def _bind_outputs(self, module, train, groups_spec):
        """Probe the module once on two samples: clear errors, dict outputs."""
        probe, _ = train.slice(0, min(2, len(train)))
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                out = module(**probe) if isinstance(probe, dict) else module(probe)
        except Exception as exc:
            raise ValueError(
                f"The module {type(module).__name__} failed on a batch of the "
                f"training data (input shape(s) {_shapes(probe)}): {exc}"
            ) from exc
        finally:
            module.train(was_training)
        return self._check_outputs(out, groups_spec)

    def _check_outputs(self, out, groups_spec):
        if isinstance(out, dict):
            groups_spec = to_dict_groups(groups_spec)
            names = [n for g in groups_spec for n in g.names]
            missing = [n for n in names if n not in out]
            if missing or any(g.out_key is None for g in groups_spec):
                raise ValueError(
                    f"forward returned outputs {sorted(out)} but the targets are "
                    f"{names}: return one output per target, named like the "
                    "targets (the columns of y)."
                )
        elif not isinstance(out, torch.Tensor):
            raise TypeError(
                f"forward must return a tensor or a dict of tensors, got {type(out)}."
            )
        return groups_spec

    def _batch_transform(self):
        """A picklable ``(X, (y, w), generator) -> (X, (y, w))`` applied to each
        training batch (augmentation), or None. Subclasses override."""
        return None

    def _class_sample_weights(self, y_strat, weights):
        return weights

    def _after_fit(self, net):
        for _, callback in net.callbacks_:
            if hasattr(callback, "best_model_weights_"):
                callback.best_model_weights_ = None  # keep pickles device-free
        rows = [{k: v for k, v in row.items() if k != "batches"} for row in net.history]
        self.history_ = (
            pd.DataFrame(rows).set_index("epoch") if rows else pd.DataFrame()
        )
        self.n_iter_ = len(rows)
        self.device_ = torch.device(net.device)
        if "valid_loss" in self.history_:
            self.best_epoch_ = int(self.history_["valid_loss"].idxmin())

    # -- prediction --------------------------------------------------------------------
    def _forward(self, X):
        """Raw network output for ``X`` on the CPU (tensor or dict of tensors)."""
        return self._forward_views(self._validated_inputs(X), [None])[0]

    def _validated_inputs(self, X):
        """``X`` checked against the fitted layout (float arrays), for prediction."""
        check_is_fitted(self, "net_")
        # NaN/inf are checked batch by batch in ``_forward_views``.
        return check_inputs(
            self,
            self._prepare_X(X, reset=False, finite=False),
            reset=False,
            finite=False,
        )

    def _forward_views(self, Xv, transforms):
        """Raw outputs for each of ``transforms`` (None: the inputs as they are).

        Every batch is read (and checked for NaN/inf) once and passed through
        the network once per transform, so test-time augmentation reads an
        on-disk input once, not once per view.
        """
        data = TensorData(_tensors(Xv))
        net = self.net_
        device = torch.device(net.device)
        module = net.module_
        module.eval()
        batch = _predict_batch_size(self.batch_size, data)
        outputs = [[] for _ in transforms]
        dtype = net.amp_dtype
        with torch_threads(), torch.inference_mode(), autocast(device, dtype):
            for start in range(0, len(data), batch):
                Xb, _ = data.slice(start, start + batch)
                check_finite_batch(Xb, start)
                if device.type != "cpu":
                    Xb = _to(Xb, device)
                for transform, out in zip(transforms, outputs):
                    Xt = Xb if transform is None else transform(Xb)
                    y = module(**Xt) if isinstance(Xt, dict) else module(Xt)
                    out.append(_to(y, "cpu", float_=True))
        return [_concat(out) for out in outputs]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        tags.input_tags.allow_nan = False
        return tags

    def __setstate__(self, state):
        super().__setstate__(state)
        net = self.__dict__.get("net_")
        if net is not None:
            self.device_ = torch.device(net.device)


def _predict_batch_size(batch_size, data):
    """Prediction batches of 256 to 1024 samples (at least ``batch_size``).

    Inference needs no gradients, so large batches amortise the per-batch cost
    on small samples (spectra, tables) without large activations on images.
    """
    tensors = data.X.values() if isinstance(data.X, dict) else [data.X]
    per_sample = max(1, sum(math.prod(t.shape[1:]) for t in tensors))
    return max(batch_size, min(1024, max(256, 2**20 // per_sample)))


def _place(data, device):
    if data is None or device.type == "cpu":
        return data
    free, _ = torch.cuda.mem_get_info(device)
    return data.to(device) if data_nbytes(data) < 0.25 * free else data


def _to(value, device, float_=False):
    if isinstance(value, dict):
        return {k: _to(v, device, float_) for k, v in value.items()}
    value = value.to(device)
    return value.float() if float_ and value.is_floating_point() else value


def _shapes(batch):
    if isinstance(batch, dict):
        return {k: tuple(v.shape) for k, v in batch.items()}
    return tuple(batch.shape)
