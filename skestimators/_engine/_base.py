"""Fit and predict plumbing shared by every network estimator of the package.

Public estimators subclass :class:`BaseNet`, declare their own explicit
``__init__`` parameters and implement or override these hooks:

``_prepare_targets(y, *, fitting, n_samples, targets, classes, sample_weight)``
    validate ``y`` and return ``(y_tensor, head_groups, n_outputs, y_strat)``;
``_make_module(input_shape, n_outputs)``
    build the ``torch.nn.Module`` from the estimator's ``module`` parameter;
``_prepare_X(X, *, reset, finite)``
    domain conversion of ``X`` before the generic checks (images, patches);
    ``finite=False`` (prediction) leaves NaN/inf to the per-batch check;
``_batch_transform()``
    a picklable training-batch transform (augmentation), or None.

``predict``/``predict_proba`` read the raw output of ``_forward(X)``.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

from ._batching import TensorData
from ._callbacks import trained_batches
from ._checkpoint import CheckpointStore, ResumeCheckpoint, SaveCheckpoint
from ._config import (
    COMMON_CONSTRAINTS,
    EngineConfig,
    TargetOptions,
    epoch_budget,
    optimizer_arguments,
    skorch_verbose,
    training_callbacks,
    validation_indices,
)
from ._continuing import (
    continue_with,
    kept_split_seed,
    logged_params,
    warn_unapplied,
    warn_validation_change,
)
from ._device import amp_dtype, resolve_device, rng_devices, torch_threads
from ._distributed import data_parallel, stop_the_others
from ._divergence import (
    diverged,
    restore_training_state,
    training_state,
    warn_if_blown_up,
)
from ._heads import HeadsLoss, check_output_shapes
from ._history import best_epoch, history_frame
from ._inference import InferenceMixin, _tensors
from ._modules import _shapes, check_trainable, dtype_hint
from ._network_file import NetworkFileMixin
from ._placement import _place, _to
from ._skorch import EngineNet, NonFiniteLoss, SplitData, check_finite_weights
from ._targets import to_dict_groups
from ._validation import (
    check_float32,
    check_inputs,
    check_nested_params,
    check_sample_weight_array,
    input_shape_for_module,
    n_samples_of,
)


class BaseNet(NetworkFileMixin, InferenceMixin, BaseEstimator):
    """The training parameters and the fit/predict plumbing of every network.

    Not public. Like scikit-learn's ``BaseHistGradientBoosting``, it takes the
    training parameters shared by every network estimator through
    ``super().__init__``; each public estimator declares all of its own
    parameters, these included, in its own ``__init__`` signature, and its
    ``_parameter_constraints`` extend :data:`COMMON_CONSTRAINTS` without
    removing any.
    """

    _parameter_constraints: dict = dict(COMMON_CONSTRAINTS)

    def __init__(
        self,
        *,
        max_epochs,
        batch_size,
        lr,
        optimizer,
        weight_decay,
        lr_scheduler,
        lr_scheduler_params,
        early_stopping,
        validation_fraction,
        validation_cv,
        patience,
        tol,
        gradient_clip,
        device,
        amp,
        warm_start,
        random_state,
        verbose,
        callbacks,
        checkpoint,
    ):
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.lr_scheduler = lr_scheduler
        self.lr_scheduler_params = lr_scheduler_params
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.validation_cv = validation_cv
        self.patience = patience
        self.tol = tol
        self.gradient_clip = gradient_clip
        self.device = device
        self.amp = amp
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.checkpoint = checkpoint

    # -- hooks for subclasses ----------------------------------------------------------
    def _handles_missing(self) -> bool:
        """Whether the network reads NaN in ``X`` as missing values (else refused)."""
        return False

    # -- fitting -----------------------------------------------------------------------
    def _prepare_X(self, X, *, reset, finite=True):
        """Domain-specific conversion and validation of ``X`` before the generic
        checks (image layouts, patch cubes). Returns what ``check_inputs`` reads.
        ``finite``: True, ``"allow-nan"`` (see :meth:`_handles_missing`) or
        False (prediction: checked batch by batch)."""
        return X

    def _engine_config(self) -> EngineConfig:
        """The one configuration the engine reads: built here, in ``fit``."""
        return EngineConfig(
            name=type(self).__name__,
            params=self.get_params(deep=False),
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            optimizer=self.optimizer,
            weight_decay=self.weight_decay,
            lr_scheduler=self.lr_scheduler,
            lr_scheduler_params=self.lr_scheduler_params,
            early_stopping=self.early_stopping,
            validation_fraction=self.validation_fraction,
            validation_cv=self.validation_cv,
            patience=self.patience,
            tol=self.tol,
            gradient_clip=self.gradient_clip,
            device=self.device,
            amp=self.amp,
            random_state=self.random_state,
            verbose=self.verbose,
            callbacks=list(self.callbacks or []),
            checkpoint=self.checkpoint,
            targets=self._target_options(),
        )

    def _target_options(self) -> TargetOptions:
        """Target weights and loss of this estimator (subclasses override)."""
        return TargetOptions()

    def _fit(
        self, X, y, sample_weight=None, groups=None, *, partial=False, classes=None
    ):
        config = self._engine_config()
        if y is None:
            raise ValueError(
                f"{config.name} requires y to be passed, but the target y is None."
            )
        continuing = (partial or self.warm_start) and hasattr(self, "net_")
        if continuing:
            return self._fit_checked(X, y, sample_weight, groups, config, partial,
                                     classes, continuing, False)  # fmt: skip
        # A fresh fit that fails (bad data, a checkpoint of another run, a
        # callback's error, divergence) leaves the estimator as it was before
        # the call: unfitted, or with the model of its previous fit.
        before = dict(vars(self))
        try:
            return self._fit_checked(X, y, sample_weight, groups, config, partial,
                                     classes, continuing, "net_" in before)  # fmt: skip
        except BaseException as exc:
            if not getattr(exc, "_keeps_weights", False):
                vars(self).clear()
                vars(self).update(before)
            raise

    def _fit_checked(
        self, X, y, sample_weight, groups, config, partial, classes, continuing, refit
    ):
        try:
            Xv, data, groups, groups_spec, n_outputs, y_strat = self._fit_data(
                X, y, sample_weight, groups, config, classes, continuing
            )
        except Exception as exc:  # the other processes of a job would wait for it
            stop_the_others(exc, lambda: resolve_device(config.device))
            raise
        device = resolve_device(config.device)
        seed = int(check_random_state(config.random_state).randint(0, 2**31 - 1))
        parallel = data_parallel(device)
        if parallel is not None:
            parallel.agree(during="checking their data")  # see stop_the_others
            device = parallel.device
            seed = parallel.prepare(config, data, seed)
        store = None
        if config.checkpoint is not None and not (continuing or partial):
            store = CheckpointStore.for_fit(config, data, groups)
            if parallel is None:
                store.acquire()
            else:  # process 0 locks and writes; the others only read
                parallel.agree(parallel.on_main(store.acquire))
        try:
            net = self._train(
                config, data, groups, groups_spec, n_outputs, y_strat, Xv,
                device=device, seed=seed, store=store, partial=partial,
                continuing=continuing, parallel=parallel, refit=refit,
                y_given=y if config.validation_cv is not None else None,
            )  # fmt: skip
        finally:
            if store is not None:
                store.release()
            net = self.__dict__.get("net_")
            if net is not None and not continuing:
                # The checkpoint belongs to this fit, not to later partial_fits.
                net.callbacks_ = [
                    (name, cb)
                    for name, cb in getattr(net, "callbacks_", [])
                    if name not in ("resume", "checkpoint")
                ]
        interrupted = net.__dict__.pop("_interrupted", False)
        cut = interrupted and net.history and "train_loss" not in net.history[-1]
        if cut:
            net.history.pop()  # the epoch cut short
        self._after_fit(net)
        if interrupted:
            # Ctrl-C: the epochs done are kept (and in the checkpoint).
            resume = ""
            if store is not None:
                # A warm start would continue from the weights reached instead.
                resume = (
                    " Fit again with warm_start=False to resume from its checkpoint."
                    if self.warm_start
                    else " Fit again to resume from its checkpoint."
                )
            where = " (part-way into the next epoch)" if cut else ""
            stop = KeyboardInterrupt(
                f"{config.name} training was interrupted after {self.n_iter_} "
                f"epoch(s); the estimator keeps the weights reached{where}.{resume}"
            )
            stop._keeps_weights = True
            raise stop
        return self

    def _fit_data(self, X, y, sample_weight, groups, config, classes, continuing):
        """Check ``fit``'s arguments: the inputs, the training data and targets."""
        finite = "allow-nan" if self._handles_missing() else True
        X = self._prepare_X(X, reset=not continuing, finite=finite)
        Xv = check_inputs(self, X, reset=not continuing, finite=finite)
        n_samples = n_samples_of(Xv)
        weights = None
        if sample_weight is not None:
            weights = torch.from_numpy(
                check_sample_weight_array(sample_weight, n_samples)
            )
        y_t, groups_spec, n_outputs, y_strat = self._prepare_targets(
            y,
            fitting=not continuing,
            n_samples=n_samples,
            classes=classes,
            targets=config.targets,
            sample_weight=None if weights is None else weights.numpy(),
        )
        tensors = _tensors(Xv)
        check_float32(tensors, allow_nan=finite == "allow-nan")
        data = TensorData(tensors, y_t, weights)
        groups = None if groups is None else np.asarray(groups)
        if groups is not None and (groups.ndim == 0 or len(groups) != n_samples):
            # Checked even without an internal split: a validation_cv or a
            # later partial_fit would otherwise read misaligned groups.
            raise ValueError(
                f"groups has {1 if groups.ndim == 0 else len(groups)} "
                f"row(s) but X has {n_samples} samples: give one group label "
                "(or one row of coordinates) per sample."
            )
        return Xv, data, groups, groups_spec, n_outputs, y_strat

    def _train(
        self, config, data, groups, groups_spec, n_outputs, y_strat, Xv, *,
        device, seed, store, partial, continuing, parallel=None, refit=False,
        y_given=None,
    ):  # fmt: skip
        """Split, build (or resume) the network and run skorch's training loop."""
        resumed = None
        if store is not None:
            resumed = store.load()
            if resumed is not None:
                seed = int(resumed["seed"])  # the split and streams of that run
        split_seed = kept_split_seed(config, self, seed) if continuing else seed
        split = (
            None
            if partial
            else validation_indices(
                config, len(data), y_strat, groups, split_seed, y=y_given
            )
        )
        train, valid = (
            (data, None)
            if split is None
            else (data.subset(split[0]), data.subset(split[1]))
        )
        if parallel is not None:  # the same split, so the same answer, everywhere
            parallel.check_train_size(len(train))
        config = epoch_budget(config, len(train))
        cuda_devices = rng_devices(device)
        if continuing:
            # Each continued call draws new batches, augmentations and dropout
            # (an int random_state gave every partial_fit call the same ones),
            # reproducibly: from random_state and the epochs trained so far.
            # The validation split above keeps the previous fit's rows.
            key = [seed, len(self.net_.history)]
            seed = int(np.random.SeedSequence(key).generate_state(1)[0] % 2**31)
        with torch_threads(), torch.random.fork_rng(devices=cuda_devices):
            torch.manual_seed(seed)
            generator = torch.Generator().manual_seed(seed)
            snapshot = None
            epochs = 1 if partial else config.max_epochs
            if continuing:
                if self.net_.head_groups is None:  # rebuilt from a safe model file
                    groups_spec = self._bind_outputs(
                        self.net_.module_, train, groups_spec
                    )
                    # Not set_params, which would also reset the loaded optimizer.
                    self.net_.criterion = HeadsLoss(groups_spec)
                    self.net_.head_groups = groups_spec
                    self.net_.initialize_criterion()
                snapshot = training_state(self.net_)
                spec = self.__dict__.get("_module_spec") or {}
                if not partial:  # partial_fit never splits
                    warn_validation_change(config, spec.get("has_valid"), valid)
                # scikit-learn skips the checks of partial_fit once fitted;
                # the values applied below must still be valid.
                self._validate_params()
                spec = self.__dict__.get("_module_spec") or {}
                self._unapplied_warned = warn_unapplied(
                    config.name,
                    spec.get("params") or {},
                    self.get_params(deep=False),
                    self.__dict__.get("_unapplied_warned"),
                )
                continue_with(self.net_, config)
            else:
                save = None
                if store is not None:
                    header = {
                        "estimator": config.name,
                        "config": store.config,
                        "data": store.data,
                        "seed": seed,
                    }
                    save = SaveCheckpoint(store, header, config.max_epochs)
                if resumed is not None:
                    done = resumed["done"]
                    epochs = 0 if done else config.max_epochs - int(resumed["epoch"])
                input_shape = input_shape_for_module(Xv)
                module = self._make_module(input_shape, n_outputs)
                # What rebuilds this network from a safe model file (no pickle).
                self._module_spec = {
                    "input_shape": input_shape,
                    "n_outputs": n_outputs,
                    "n_train": len(train),  # sizes the learning-rate schedule
                    "has_valid": valid is not None,  # what a schedule monitors
                    "split_seed": seed,  # the split that continuing fits keep
                    # What the network is built with: set_params after fit
                    # changes the next fit, not this network (_as_built).
                    "params": self.get_params(deep=False),
                }
                groups_spec = self._bind_outputs(module, train, groups_spec)
                self.net_ = self._make_net(
                    config,
                    module,
                    groups_spec,
                    device,
                    len(train),
                    valid is not None,
                    epochs=1 if partial else config.max_epochs,
                    resume=None if resumed is None else ResumeCheckpoint(resumed),
                    save=save,
                    parallel=parallel,
                )
                self.net_.initialize()
            net = self.net_
            net.batch_generator = generator
            train, valid = _place(train, device), _place(valid, device)
            if parallel is not None:
                parallel.attach(net, seed)
            failed = True
            try:
                net.partial_fit(SplitData(train, valid), epochs=max(0, epochs))
                check_finite_weights(net)  # a callback may have ended training
                failed = False
            except NonFiniteLoss as exc:
                diverged(net, exc, config, snapshot, refit)
                failed = False  # the best epoch was restored, on every process
            except Exception as exc:
                if snapshot is not None:  # a continuing fit: as before the call
                    restore_training_state(net, snapshot)
                if "Expected more than 1 value per channel when training" in str(exc):
                    raise ValueError(
                        f"{config.name}: batch normalisation needs more than one "
                        "value per channel in each training batch, but a batch "
                        f"held one sample (batch_size={config.batch_size}): use "
                        "batch_size >= 2."
                    ) from exc
                raise
            finally:
                if parallel is not None:
                    parallel.detach(net, failed=failed)
        warn_if_blown_up(net, config)
        return net

    def _make_net(
        self,
        config,
        module,
        groups_spec,
        device,
        n_train,
        has_valid,
        epochs,
        resume=None,
        save=None,
        parallel=None,
    ):
        config = epoch_budget(config, n_train)
        n_batches = -(-n_train // config.batch_size)
        if epochs == "auto":
            epochs = config.max_epochs
        callbacks = training_callbacks(
            config,
            has_valid=has_valid,
            n_batches=n_batches,
            resume=resume,
            save=save,
        )
        # The module's own schedule (e.g. a frozen pretrained backbone) runs first.
        callbacks[:0] = self._module_callbacks(config)
        if parallel is not None:  # loggers, progress and checkpoints on process 0
            callbacks = [(n, cb) for n, cb in callbacks if parallel.writes(n, cb)]
        return EngineNet(
            module=module,
            criterion=HeadsLoss(groups_spec),
            **optimizer_arguments(config),
            lr=config.lr,
            max_epochs=epochs,
            batch_size=config.batch_size,
            train_split=None,
            callbacks=callbacks,
            **self._optimizer_options(config),
            device=str(device),
            verbose=skorch_verbose(config),
            amp_dtype=amp_dtype(config.amp, device),
            gradient_clip=config.gradient_clip,
            head_groups=groups_spec,
            batch_transform=self._batch_transform(),
            estimator_name=config.name,
            estimator_params=logged_params(config),
        )

    def _bind_outputs(self, module, train, groups_spec):
        """Probe the module once on two samples: clear errors, dict outputs."""
        probe, (targets, _) = train.slice(0, min(2, len(train)))
        parameter = next(iter(module.parameters()), None)
        if parameter is not None:  # a loaded GPU model, the data not yet placed
            probe = _to(probe, parameter.device)
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                out = module(**probe) if isinstance(probe, dict) else module(probe)
        except Exception as exc:
            raise ValueError(
                f"The module {type(module).__name__} failed on a batch of the "
                f"training data (input shape(s) {_shapes(probe)}): {exc}"
                f"{dtype_hint(module)}"
            ) from exc
        finally:
            module.train(was_training)
        check_trainable(module)
        groups_spec = self._check_outputs(out, groups_spec)
        n_outputs = (self.__dict__.get("_module_spec") or {}).get("n_outputs")
        check_output_shapes(out, groups_spec, targets, module, n_outputs)
        return groups_spec

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

    def _module_callbacks(self, config):
        """``(name, callback)`` pairs that run before every other callback
        (e.g. freezing part of the module for the first epochs), or ``[]``.
        Subclasses override."""
        return []

    def _optimizer_options(self, config):
        """Extra ``optimizer__*`` keyword arguments of skorch's ``NeuralNet``
        (e.g. ``optimizer__param_groups`` for a lower learning rate of some
        parameters), or ``{}``. Subclasses override."""
        return {}

    def _batch_transform(self):
        """A picklable ``(X, (y, w), generator) -> (X, (y, w))`` applied to each
        training batch (augmentation), or None. Subclasses override."""
        return None

    def _after_fit(self, net):
        for _, callback in net.callbacks_:
            if hasattr(callback, "best_model_weights_"):
                callback.best_model_weights_ = None  # keep pickles device-free
        spec = self.__dict__.get("_module_spec")
        if spec is not None:
            # A safe model file keeps history_ without skorch's bookkeeping;
            # a schedule stepped every batch resumes from these counts.
            spec["train_batches"] = [trained_batches([row]) for row in net.history]
        self.history_ = history_frame(net.history)
        self.n_iter_ = len(self.history_)
        self.device_ = torch.device(net.device)
        if net.history and "valid_loss" in net.history[-1]:
            self.best_epoch_ = best_epoch(net, self.history_)
        else:  # this fit kept its last weights: no earlier fit's best epoch
            self.__dict__.pop("best_epoch_", None)

    def set_params(self, **params):
        """Set the parameters of this estimator.

        As scikit-learn's, but a skorch-style ``module__hidden`` (the network,
        the optimizer and the schedule are not estimators) is refused with
        where that setting goes: ``module_params``, a ``functools.partial``
        optimizer, ``lr_scheduler_params``.

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : estimator instance
            Estimator instance.
        """
        check_nested_params(self, params)
        return super().set_params(**params)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        tags.input_tags.allow_nan = self._handles_missing()
        return tags

    def __setstate__(self, state):
        super().__setstate__(state)
        net = self.__dict__.get("net_")
        if net is not None:
            self.device_ = torch.device(net.device)
