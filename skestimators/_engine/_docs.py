"""Parameter documentation shared by the network estimators."""

import inspect

TRAINING_PARAMS = """\
max_epochs : int or "auto", default={max_epochs}
        Maximum number of passes over the training data. ``"auto"`` counts
        optimizer steps instead: enough epochs for 2,000 steps (at least 20,
        at most 1,000 epochs), and early stopping then waits at least 200
        steps (``patience`` epochs or more). Small data sets, a few batches
        per epoch, get the updates they need; from 100 batches per epoch on
        (3,200 training samples in batches of 32), it is 20 epochs.
    batch_size : int, default={batch_size}
        Samples per training batch. Prediction and validation use larger
        batches for small samples (up to 1024 samples, while a batch holds
        under 2**20 input values); never fewer than ``batch_size``.
    lr : float, default={lr}
        Learning rate of the optimizer.
    optimizer : {"adam", "adamw", "sgd", "rmsprop"}, torch.optim class or \
functools.partial, default="adam"
        The optimizer. Its settings other than the learning rate and the
        weight decay go in a ``functools.partial``:
        ``partial(torch.optim.SGD, momentum=0.9, nesterov=True)``.
        ``torch.optim.LBFGS``, which steps with a closure, is refused.
    weight_decay : float, default=0.0
        L2 penalty (decoupled for ``"adamw"``). Passed to the optimizer only
        when not 0, so optimizers without weight decay (``torch.optim.Rprop``)
        train at the default.
    lr_scheduler : {"cosine", "step", "plateau", "onecycle"}, torch scheduler \
class or None, default={lr_scheduler}
        Learning-rate schedule: ``"cosine"`` decays the rate along a cosine
        from ``lr`` to zero at ``max_epochs``; ``"plateau"`` follows the
        validation loss; ``"onecycle"`` rises to ``10 * lr`` and falls again
        over the batches of ``max_epochs`` epochs. ``partial_fit`` and warm
        starts continue a schedule where it stopped; ``"cosine"`` starts a
        new cycle from ``lr`` after each ``T_max`` epochs (``max_epochs``
        unless ``lr_scheduler_params`` sets it: a warm restart), so a
        continuing fit past its end trains a new cycle; a one-cycle schedule
        ends at its final rate and cannot be continued past its end; a torch
        scheduler class behaves as in torch.
    lr_scheduler_params : dict or None, default=None
        Keyword arguments of the scheduler, overriding the defaults.
    early_stopping : bool, default={early_stopping}
        Stop when the validation loss has not improved by ``tol`` (relative)
        for ``patience`` epochs, and restore the weights of the best epoch.
        Needs a validation split (``validation_fraction`` or ``validation_cv``).
    validation_fraction : float or None, default={validation_fraction}
        Fraction of the training data held out for validation. With ``groups``
        passed to ``fit``, whole groups are held out; single-label classifiers
        stratify. None disables the internal validation split.
    validation_cv : int, cross-validation splitter, iterable or None, default=None
        A splitter whose first split gives the validation set (for instance
        ``GroupKFold(5)`` or a spatial splitter); it receives ``groups`` from
        ``fit``. An int is a K-fold, stratified for classifiers, as in
        ``cross_validate``; an iterable gives the (train, validation) index
        pairs. Takes precedence over ``validation_fraction``.
    patience : int, default=10
        Epochs without improvement before early stopping.
    tol : float, default=1e-4
        Minimum relative improvement of the validation loss.
    gradient_clip : float or None, default=None
        Clip the global gradient norm to this value.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU; ``"cpu"``,
        ``"cuda"``, ``"cuda:1"`` ... are used as given.
    amp : {"bf16", "fp16"} or None, default=None
        Mixed precision: autocast to bfloat16 or float16 (with gradient
        scaling) on the GPU; ``"bf16"`` also works on recent CPUs.
    warm_start : bool, default=False
        Continue training the fitted network on the next ``fit`` instead of
        starting again. The continuing fit keeps the validation split of the
        previous fit, also when ``random_state`` is None.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, dropout, the validation split and the
        batch order. The global torch and NumPy generators are left untouched.
    verbose : int, default=0
        Show a progress bar over epochs when positive.
    callbacks : list or None, default=None
        skorch callbacks, or ``(name, callback)`` pairs, run beside the
        engine's own (early stopping, schedule, checkpoint, progress) at every
        training event; they see the same history, per-target validation
        metrics included. Used as given, as in skorch (``clone`` copies
        them). See :ref:`callbacks` for the order in which they run and
        :mod:`skestimators.tracking` for experiment loggers.
    checkpoint : str, path-like or None, default=None
        Directory where the state needed to continue training (weights,
        optimizer, schedule, early stopping, history, random streams) is
        written atomically at the end of every epoch. ``fit`` resumes from a
        checkpoint of the same configuration and training data, and refuses
        one of another with an error naming the difference; two fits never
        share a directory (a lock). ``{params}`` and ``{data}`` in the
        directory are replaced by digests of the parameters and of the
        training data, so that each fold of a cross-validation
        (``"runs/{data}"``) and each candidate of a search
        (``"runs/{params}-{data}"``) keeps its own run and resumes it when
        run again. ``partial_fit`` and warm starts do not checkpoint."""

FITTED_ATTRS = """\
net_ : skorch.NeuralNet
        The trained network and its training state (``net_.module_`` is the
        ``torch.nn.Module``).
    history_ : pandas.DataFrame
        One row per epoch: ``train_loss``, ``valid_loss``, ``dur`` and, per
        target, validation metrics (``valid_<target>_<metric>``).
    n_iter_ : int
        Number of epochs trained.
    best_epoch_ : int
        With early stopping, the epoch whose weights the network keeps: the
        last that lowered the validation loss by more than ``tol``; otherwise
        the epoch with the lowest validation loss (only with a validation
        split).
    device_ : torch.device
        Device the network lives on.
    input_shape_ : tuple or dict
        Shape of one sample, or of each named input.
    n_features_in_ : int
        Number of features (``X.shape[1]``) for array input.
    feature_names_in_ : ndarray of str
        Column names of a DataFrame ``X``."""


def fill_doc(cls):
    """Class decorator replacing ``{training_params}`` and ``{fitted_attrs}``.

    The defaults in the training parameters' text are read from the class's
    own signature, so the documented default is always the real one (the
    glossary says why some differ between estimators). Plain text
    replacement, not ``str.format``: docstrings keep single braces.
    """
    training = TRAINING_PARAMS
    for name, parameter in inspect.signature(cls).parameters.items():
        value = parameter.default
        text = f'"{value}"' if isinstance(value, str) else repr(value)
        training = training.replace("{" + name + "}", text)
    cls.__doc__ = cls.__doc__.replace("{training_params}", training).replace(
        "{fitted_attrs}", FITTED_ATTRS
    )
    return cls
