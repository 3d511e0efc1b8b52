"""Rebuilding a fitted network from plain values and weights (safe model files)."""

from __future__ import annotations

import torch
from skorch.history import History

__all__ = ["NetworkFileMixin"]


class NetworkFileMixin:
    """What a safe model file needs from a network estimator (see ``_io``).

    ``fit`` records ``_module_spec`` (the input shape and output count the
    module was built with, the number of training samples, which sizes the
    learning-rate schedule, whether it had a validation split, which a
    schedule or early stopping monitors, and the training batches of each
    epoch, from which a schedule stepped every batch resumes); :meth:`_restore_network`
    rebuilds ``net_`` from it with the estimator's own ``_make_module`` and
    ``_make_net``, at the parameters it records (:meth:`_as_built`).
    """

    def _as_built(self):
        """This estimator with the parameters its network was built with.

        A shallow copy holding the parameters of the fit that built
        ``net_`` (recorded in ``_module_spec``), or the estimator itself when
        they were not recorded (files of older versions). Parameters changed
        since (``set_params`` on a fitted model) belong to the next fit: what
        depends on how the network was trained (rebuilding it from a model
        file, test-time augmentation) reads them here.
        """
        spec = self.__dict__.get("_module_spec")
        params = None if spec is None else spec.get("params")
        if not params:
            return self
        built = object.__new__(type(self))
        built.__dict__.update(self.__dict__)
        built.__dict__.update(params)
        return built

    def _network_spec(self):
        """Plain values that rebuild the fitted network (None if not recorded)."""
        spec = self.__dict__.get("_module_spec")
        return None if spec is None else dict(spec)

    def _restore_network(self, spec, state_dict, device, optimizer_state=None):
        """Rebuild ``net_`` from :meth:`_network_spec` and the module's weights.

        Used when loading a safe model file: the network is built as ``fit``
        builds it, ``state_dict`` is loaded into its module and
        ``optimizer_state`` (an optimizer ``state_dict``; None for a fresh
        optimizer) into its optimizer, at the initial learning rates: the
        next ``partial_fit`` replays the learning-rate schedule from them. A
        network trained on a GPU is rebuilt on the CPU where no GPU is
        available.
        """
        built = self._as_built()
        config = built._engine_config()
        device = torch.device(device)
        if device.type == "cuda" and not torch.cuda.is_available():
            device = torch.device("cpu")
        elif device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
            device = torch.device("cuda", 0)  # saved on a GPU this machine lacks
        history = self.__dict__.get("history_")
        # Files written before has_valid was recorded: the history tells.
        has_valid = spec.get(
            "has_valid", history is not None and "valid_loss" in history.columns
        )
        module = built._make_module(spec["input_shape"], spec["n_outputs"])
        net = built._make_net(
            config, module, [], device, n_train=spec.get("n_train", 1),
            has_valid=has_valid, epochs=config.max_epochs,
        )  # fmt: skip
        net.head_groups = None  # bound to the targets by the next partial_fit
        net.initialize()
        net.module_.load_state_dict(state_dict)
        if optimizer_state is not None:
            optimizer = net.optimizer_
            initial = [group["lr"] for group in optimizer.param_groups]
            optimizer.load_state_dict(optimizer_state)
            for group, lr in zip(optimizer.param_groups, initial):
                group["lr"] = lr
        if history is not None and len(history):
            # Later partial_fit epochs are numbered and recorded after these.
            # The table holds NaN where an epoch had no value (a partial_fit
            # epoch has no validation loss): the rows leave them out again, as
            # early stopping and a plateau schedule skip such epochs.
            rows = [
                {key: value for key, value in row.items() if not _missing(value)}
                for row in history.reset_index().to_dict("records")
            ]
            counts = spec.get("train_batches", ())
            if len(counts) == len(rows):
                for row, count in zip(rows, counts):
                    row["train_batch_count"] = int(count)
            net.history = History(rows)
        self._module_spec = dict(spec)
        self.net_ = net
        self.device_ = torch.device(net.device)
        return self


def _missing(value):
    """Whether a value of the history table stands for no value (NaN)."""
    return isinstance(value, float) and value != value
