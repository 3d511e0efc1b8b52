"""Prediction plumbing of the network estimators: batches, views, dropout draws."""

from __future__ import annotations

import contextlib
import copy
import threading

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..exceptions import NonFinitePredictionError
from ._batching import TensorData, to_tensor
from ._device import autocast, rng_devices, torch_threads
from ._mc_dropout import shared_mask_dropout
from ._placement import _nonfinite_rows, _predict_batch_size, _to, dropout_layers
from ._skorch import _batch_len, _concat
from ._staging import BatchStager
from ._validation import check_finite_batch, check_inputs

__all__ = ["InferenceMixin"]


def _tensors(X):
    if isinstance(X, dict):
        return {k: to_tensor(v) for k, v in X.items()}
    return to_tensor(X)


def _dropout_hint(estimator) -> str:
    """How ``estimator`` is given a network with dropout: the parameter it takes."""
    params = estimator.get_params(deep=False)
    if "dropout" in params:
        return "e.g. dropout=0.1"
    if "module_params" in params:
        return (
            "e.g. module_params={'dropout': 0.1} for the default MLP, or a "
            "module with dropout layers"
        )
    return "a module with dropout layers"


class InferenceMixin:
    """Forward passes of a fitted network estimator (``net_``), batch by batch.

    ``predict``/``predict_proba`` read the raw output of :meth:`_forward`;
    test-time augmentation and Monte Carlo dropout use :meth:`_forward_views`.
    """

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

    def _prediction_gaps(self):
        """A tally of missing values (NaN) in prediction inputs, or None.

        Estimators whose networks read NaN as missing return an object with
        ``add(start, batch)``, given each host batch that is not all finite,
        and define ``_report_gaps(tally, n_rows)``, called once after the
        last batch with the number of rows predicted.
        """
        return None

    def _forward_views(
        self, Xv, transforms, *, mc_dropout=False, reduce=None, inspect=True
    ):
        """Raw outputs for each of ``transforms`` (None: the inputs as they are).

        Every batch is read (and checked for NaN/inf) once and passed through
        the network once per transform, so test-time augmentation reads an
        on-disk input once, not once per view. With ``mc_dropout=True`` the
        dropout layers (only them: batch norm stays in eval mode) drop units
        in every pass, from a generator seeded by ``random_state``, so each
        transform gives one Monte Carlo dropout draw (masks shared by the
        rows, so that a row's draws do not depend on its batch: see
        :mod:`._mc_dropout`). ``reduce``, a function
        of the list of one batch's outputs (one per transform, on the CPU),
        returns the list of tensors kept for that batch instead: the outputs
        of many passes need not be held for the whole input. ``inspect=False``
        skips counting (and warning of) missing values, for a second pass over
        inputs already inspected.
        """
        data = TensorData(_tensors(Xv))
        net = self.net_
        device = torch.device(net.device)
        module = net.module_
        if any(m.training for m in module.modules()):
            module.eval()  # a walk that sets every flag: 0.2 ms on a CNN
        batch = _predict_batch_size(self.batch_size, data)
        outputs = [[] for _ in transforms] if reduce is None else None
        bad = []
        dtype = net.amp_dtype
        rng = contextlib.nullcontext()
        if mc_dropout:
            # Dropout is switched on in a copy: a plain predict running in
            # another thread on this estimator keeps the network in eval mode.
            module = _sharing_copy(module)
            layers = dropout_layers(module)
            if not layers:
                raise ValueError(
                    f"{type(self).__name__} estimates the standard deviation "
                    "of its predictions by Monte Carlo dropout, but its network "
                    f"{type(module).__name__} has no dropout layer with p > 0. "
                    f"Train it with dropout ({_dropout_hint(self)}), or use "
                    "skestimators.uncertainty.DeepEnsembleRegressor."
                )
            cuda_devices = rng_devices(device)
            # Dropout draws from torch's process-wide generator: one seeded
            # Monte Carlo run at a time, so that concurrent ones repeat.
            rng = _serialised(_MC_LOCK, torch.random.fork_rng(devices=cuda_devices))
        allow_nan = self._handles_missing()  # once, not per batch
        gaps = self._prediction_gaps() if inspect else None
        on_device = _checks_on_device(device)
        stager = BatchStager(data, batch, device)
        with rng, torch_threads(), torch.inference_mode(), autocast(device, dtype):
            passes = None
            if mc_dropout:
                seed = check_random_state(self.random_state).randint(0, 2**31 - 1)
                torch.manual_seed(int(seed))  # for the layers drawing row by row
                passes = shared_mask_dropout(layers, int(seed))
            host, Xb = stager.get(0) if len(data) else (None, None)
            for start in range(0, len(data), batch):
                stager.ready()
                # Checked where the batch is (on a GPU: a flag from a small
                # kernel, read before the network sees the batch; the GPU is
                # idle by then, the last outputs copied back). Only a batch
                # that is not all finite is looked at value by value.
                if not bool(_finite_flag(Xb if on_device else host)):
                    check_finite_batch(Xb, start, allow_nan=allow_nan)
                    if gaps is not None:  # NaN allowed: count the gaps
                        gaps.add(start, host)
                n_rows = _batch_len(Xb)
                ys = []
                for draw, t in enumerate(transforms):
                    if passes is not None:  # the dropout masks of this pass
                        passes.start(draw)
                    Xt = Xb if t is None else t(Xb)
                    ys.append(module(**Xt) if isinstance(Xt, dict) else module(Xt))
                # Freed before the next batch is read: a batch read from a
                # memory-mapped file is a copy, and two would be alive at
                # once. The next batch is staged while the device runs the
                # network on this one.
                host = Xb = None
                if start + batch < len(data):
                    host, Xb = stager.get(start + batch)
                batch_outputs = []
                for y in ys:
                    y = _to(y, "cpu", float_=True)
                    _check_rows(y, n_rows, module)
                    if reduce is not None:  # the raw outputs are not kept
                        bad.append(_nonfinite_rows(y, start))
                    batch_outputs.append(y)
                ys = None
                if reduce is not None:
                    batch_outputs = reduce(batch_outputs)
                    if outputs is None:
                        outputs = [[] for _ in batch_outputs]
                for out, y in zip(outputs, batch_outputs):
                    out.append(y)
        if gaps is not None:
            self._report_gaps(gaps, len(data))
        results = [_concat(out) for out in outputs or ()]
        if reduce is None:  # checked once, on the whole outputs
            bad = [_nonfinite_rows(y, 0) for y in results]
        bad = [rows for rows in bad if rows is not None]
        if bad:
            rows = np.unique(np.concatenate(bad))
            raise NonFinitePredictionError(
                f"{type(self).__name__} predicted NaN or infinite values for "
                f"{rows.size} of {len(data)} rows (first rows: "
                f"{rows[:5].tolist()}); its weights or these inputs are out of "
                "the range it can handle.",
                rows=rows,
            )
        return results


_MC_LOCK = threading.Lock()


def _sharing_copy(module):
    """A copy of ``module`` whose layers (and their train/eval flags) are its
    own but whose parameters and buffers are those of ``module``: no second
    copy of the weights in (GPU) memory."""
    memo = {id(t): t for t in (*module.parameters(), *module.buffers())}
    return copy.deepcopy(module, memo)


@contextlib.contextmanager
def _serialised(lock, context):
    with lock, context:
        yield


def _checks_on_device(device) -> bool:
    """Whether prediction batches are checked for NaN/inf on ``device``, once
    copied there, rather than on the host (the CPU itself)."""
    return device.type != "cpu"


def _finite_flag(batch):
    """A scalar (on the batch's device), True when ``batch`` certainly holds
    finite values only.

    A finite sum of sums proves it; a non-finite one (NaN, inf, or an overflow
    of large finite values) calls for :func:`check_finite_batch`, which names
    the first refused value, if any.
    """
    tensors = list(batch.values()) if isinstance(batch, dict) else [batch]
    return torch.isfinite(sum(t.sum() for t in tensors[1:]) + tensors[0].sum())


def _check_rows(output, n, module):
    """Refuse outputs with another number of rows than the batch's ``n`` (a
    module that drops or adds rows in evaluation mode): predictions would no
    longer line up with the inputs."""
    tensors = output.values() if isinstance(output, dict) else [output]
    for tensor in tensors:
        if tensor.ndim == 0 or len(tensor) != n:
            shape = tuple(tensor.shape)
            raise ValueError(
                f"The module {type(module).__name__} returned an output of shape "
                f"{shape} for a batch of {n} samples; predictions need one row "
                "per sample."
            )
