"""The image handling shared by ImageClassifier and GalaxyZooRegressor."""

from __future__ import annotations

import contextlib
import contextvars
import fnmatch
import functools
import inspect
import numbers
import os

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array

from .._engine import (
    Callback,
    LazyRows,
    check_memmap,
    instantiate_module,
    scale_uint8,
)
from .._multiinput import as_mapping
from ..nn import (
    ARCHITECTURES,
    FEATURES_PATTERN,
    GalaxyCNN,
    GalaxyResNet,
    GalaxyZooConstraint,
    ImageBatchAugment,
    PretrainedNet,
    dihedral_transform,
)
from ..preprocessing import to_channels_first
from ._pixel_scale import channel_stats, check_pixel_scale, stats_sample

# Parameters of the image networks shared by the image estimators.
IMAGE_CONSTRAINTS = {
    "module": [
        StrOptions({"galaxycnn", "resnet", *ARCHITECTURES}),
        type,
        torch.nn.Module,
    ],
    "width": [Interval(numbers.Integral, 1, None, closed="left")],
    "depth": [Interval(numbers.Integral, 1, None, closed="left")],
    "head_width": [None, Interval(numbers.Integral, 1, None, closed="left")],
    "blocks": [Interval(numbers.Integral, 1, None, closed="left")],
    "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
    "spin_features": ["boolean"],
    "pretrained_weights": [None, str, os.PathLike],
    "freeze_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
    "feature_lr_factor": [
        StrOptions({"auto"}),
        Interval(numbers.Real, 0, None, closed="left"),
    ],
    "augment": ["boolean"],
    "max_shift": [Interval(numbers.Real, 0, 0.5, closed="both")],
    "zoom": [tuple, list],
    "tta": [Interval(numbers.Integral, 1, 8, closed="both"), StrOptions({"auto"})],
    "layout": [StrOptions({"auto", "channels_first", "channels_last"})],
}

MODULE_DOC = """\
module : str, torch.nn.Module class or instance, default="galaxycnn"
        The network. ``"galaxycnn"``: convolution, batch normalisation, ReLU
        and max pooling blocks, global average pooling and, with
        ``head_width``, a dense layer (a plain VGG-style network);
        ``"resnet"``: residual stages and global average pooling. Both
        standardise each input channel with the statistics of the training
        images. A ``torch.nn.Module`` class is built with ``input_shape``
        and ``n_outputs`` when its constructor takes ``n_outputs``.
        The names ``"resnet18"``, ``"resnet50"``, ``"efficientnet_b0"`` and
        ``"convnext_tiny"`` build that torchvision architecture (extra
        ``vision``) as the feature extractor of a
        :class:`~skestimators.nn.PretrainedNet`, with random weights or
        ``pretrained_weights``, its first convolution adapted to the
        channels and its ImageNet classifier replaced by this estimator's
        output layer. A ``torch.nn.Module`` instance, or a class whose
        constructor does not take ``n_outputs``, is a feature extractor
        too: it maps images to ``(n, features)`` or to feature maps, and
        the output layer is added on its features."""

IMAGE_PARAMS_DOC = """\
width : int, default=32
        Channels of the first convolution block; each further block doubles
        them (``width=32, depth=4``: 32, 64, 128, 256).
    depth : int, default=4
        Convolution blocks (``"galaxycnn"``) or residual stages
        (``"resnet"``); each halves the image, which must be at least
        ``2 ** depth`` pixels on a side.
    head_width : int or None, default=HEAD_WIDTH
        Units of the dense layer of ``"galaxycnn"`` and of the torchvision
        architectures, after the global average pooling; None: no dense
        layer, the pooled features go straight to the output layer (ignored
        by ``"resnet"``).
    blocks : int, default=2
        Residual blocks per stage of ``"resnet"`` (ignored by ``"galaxycnn"``).
    dropout : float, default=DROPOUT
        Dropout before the output layer (after the dense layer, if any).
    spin_features : bool, default=SPIN_FEATURES
        Give the output layer, beside the pooled features, statistics of how
        the light winds about the centre of the image
        (:class:`~skestimators.nn.SpinFeatures`): their sign tells a
        clockwise from an anticlockwise spiral, which a network trained from
        scratch on a few hundred spirals does not learn. Used by the
        package's networks and by feature extractors (not by a module class
        that builds the whole network).
    pretrained_weights : str, path or None, default=None
        A local file of weights for the torchvision architecture named by
        ``module`` (its ``state_dict()`` saved with ``torch.save``, or a
        ``.safetensors`` file), or for a feature extractor module; nothing
        is downloaded. The weights of the architecture's ImageNet classifier
        are ignored. None: random weights. The file is read by ``fit`` only:
        a saved model loads without it.
    freeze_epochs : int, default=0
        Epochs at the start of training during which the parameters of the
        feature extractor (torchvision architecture or feature extractor
        module) are frozen, so that only the new head learns (batch
        normalisation statistics still adapt). Ignored by ``"galaxycnn"``,
        ``"resnet"`` and whole-network classes.
    feature_lr_factor : float or "auto", default="auto"
        Learning rate of the feature extractor's parameters after
        ``freeze_epochs``, as a fraction of ``lr`` (the head trains at
        ``lr``). ``"auto"``: 0.1 with ``pretrained_weights`` (fine-tuning:
        small steps keep what the weights learned), 1 without. Ignored like
        ``freeze_epochs``.
    augment : bool, default=True
        Augment every training batch: a random rotation by a multiple of 90
        degrees and (where labels allow it) a random mirror flip per image,
        then a random shift and zoom (``max_shift``, ``zoom``)."""

SHIFT_TTA_DOC = """\
max_shift : float, default=MAX_SHIFT
        Largest random shift of the training augmentation, as a fraction of
        the image size (0 disables shifts).
    zoom : tuple of float, default=ZOOM
        Range of the random magnification of the training augmentation
        (``(1, 1)`` disables zooming; with ``max_shift=0`` the images are
        then never resampled).
    tta : int or "auto", default=TTA
        Test-time augmentation: ``predict`` averages the outputs over this
        many dihedral views of each image (1, the identity, means none; 2
        adds the mirror image, 4 the 180 degree rotations, 8 the 90 degree
        rotations, which need square images). ``"auto"``: every view the
        training augmentation draws (the four rotations of a square image,
        and their mirror images where mirroring is used; the views that
        keep the shape of other images), or none with ``augment=False``;
        fixed by ``fit``, so changing the augmentation parameters of a
        fitted model does not change what it averages.
    layout : {"auto", "channels_first", "channels_last"}, default="auto"
        Where the channels of 4-D ``X`` are. ``"auto"`` takes the two equal
        dimensions of square images as height and width; for other images
        the smaller of the second and last dimensions is the channels. The
        layout seen in ``fit`` is used again at prediction."""

IMAGE_ATTRS_DOC = """\
layout_ : {"channels_first", "channels_last"}
        Layout of the images seen in ``fit`` (3-D input, one channel, counts
        as channels first). ``n_features_in_`` is the number of channels.
    input_dtype_ : str
        dtype of the pixels seen in ``fit`` (e.g. ``"uint8"``, ``"float32"``).
    input_max_ : float
        Largest training pixel after ``uint8`` pixels are scaled to [0, 1]
        (of the first 4096 images of a memory-mapped ``X``). After a
        ``uint8`` fit, prediction refuses float pixels beyond 1.5 (0-255
        floats), and so it does after a fit on floats up to 1.5 for pixels
        beyond 4; after a fit on floats beyond 1.5, it refuses ``uint8``
        images, which it would scale to [0, 1]."""


def _image_doc(cls):
    """Fill ``{module_param}``, ``{image_params}``, ``{shift_tta_params}`` and
    ``{image_attrs}`` (before :func:`fill_doc`, which then turns the doubled
    braces into single ones)."""
    defaults = inspect.signature(cls).parameters
    shift_doc = SHIFT_TTA_DOC.replace(
        "MAX_SHIFT", repr(defaults["max_shift"].default)
    ).replace("ZOOM", repr(defaults["zoom"].default))
    shift_doc = shift_doc.replace("TTA", repr(defaults["tta"].default))
    image_doc = (
        IMAGE_PARAMS_DOC.replace("HEAD_WIDTH", repr(defaults["head_width"].default))
        .replace("DROPOUT", repr(defaults["dropout"].default))
        .replace("SPIN_FEATURES", repr(defaults["spin_features"].default))
    )
    cls.__doc__ = cls.__doc__.replace("{module_param}", MODULE_DOC)
    cls.__doc__ = cls.__doc__.replace("{image_params}", image_doc)
    cls.__doc__ = cls.__doc__.replace("{shift_tta_params}", shift_doc)
    cls.__doc__ = cls.__doc__.replace("{image_attrs}", IMAGE_ATTRS_DOC)
    return cls


def _view(x, k):
    return dihedral_transform(x, k)[0]


# True while a saved model is rebuilt: its weights come from the model file.
_REBUILDING = contextvars.ContextVar("rebuilding", default=False)


@contextlib.contextmanager
def _rebuilding():
    token = _REBUILDING.set(True)
    try:
        yield
    finally:
        _REBUILDING.reset(token)


class FreezeFeatures(Callback):
    """Freeze the feature extractor's parameters for the first ``epochs`` epochs.

    ``requires_grad`` of the parameters named ``features.*`` (those of
    :class:`~skestimators.nn.PretrainedNet`'s feature extractor) is False in the
    epochs ``1 .. epochs`` of the net's history (``partial_fit`` epochs count
    on) and True afterwards and once training ends.
    """

    def __init__(self, epochs):
        self.epochs = epochs

    def _set(self, net, trainable):
        for name, param in net.module_.named_parameters():
            if fnmatch.fnmatch(name, FEATURES_PATTERN):
                param.requires_grad_(trainable)

    def on_epoch_begin(self, net, **kwargs):
        self._set(net, len(net.history) > self.epochs)

    def on_train_end(self, net, **kwargs):
        self._set(net, True)


class ImageNetMixin:
    """Image input, networks, augmentation and test-time augmentation (private).

    Mixed into a :class:`NetClassifier` or :class:`NetRegressor` subclass that
    has the parameters of :data:`IMAGE_CONSTRAINTS`; the subclass sets
    ``_head_constraint`` (the Galaxy Zoo output layer, or None).
    """

    # -- input -------------------------------------------------------------------------
    def _validate_images(self, X, *, reset, finite=True):
        """``X`` as float32 images ``(n, channels, height, width)``; uint8 scaled."""
        name = type(self).__name__
        if as_mapping(X) is not None:
            raise ValueError(
                f"{name} takes one array of images, not named inputs (a "
                "MultiInput or dict)."
            )
        if _file_names(X):
            raise ValueError(
                f"{name} takes images as pixel arrays (n_samples, channels, "
                "height, width), not file names: read a folder of images with "
                "skestimators.datasets.load_image_folder (or load_galaxy_zoo)."
            )
        lazy = isinstance(X, np.memmap)
        # NaN/inf: checked here in fit, batch by batch when predicting.
        if lazy:  # out of core: checked in chunks, read batch by batch
            X = check_memmap("X", X, reshape_1d=False, scan=finite)
        else:
            X = check_array(
                X,
                dtype="numeric",
                accept_sparse=False,
                allow_nd=True,
                ensure_2d=False,
                ensure_all_finite=False if finite is True else finite,
                input_name="X",
                estimator=self,
            )
            if finite is True:
                _check_finite_pixels(name, X)
        if X.ndim not in (3, 4):
            raise ValueError(
                f"{name} expects images: an array of shape (n_samples, channels, "
                "height, width), (n_samples, height, width, channels) or "
                f"(n_samples, height, width); got an array of shape {X.shape}. "
                "Reshape a table of flattened pixels to images first, e.g. "
                "X.reshape(n_samples, channels, height, width)."
            )
        if X.dtype.kind not in "biuf":
            raise ValueError(f"{name} expects numeric pixels, got dtype {X.dtype}.")
        if 0 in X.shape[1:]:
            raise ValueError(
                f"{name} got images of shape {X.shape[1:]} with an empty dimension "
                "(no channels or no pixels)."
            )
        X, layout = to_channels_first(
            X, self.layout, fitted_layout=None if reset else self.layout_
        )
        raw, scale = X, X.dtype == np.uint8
        if lazy:
            X = LazyRows(X, convert=scale_uint8 if scale else None)
        else:
            X = np.ascontiguousarray(X, dtype=np.float32)
            if scale:
                X /= 255.0  # a new array: the conversion from uint8 copied
        if reset:
            sample = stats_sample(X)
            self.layout_ = layout
            self._input_stats = channel_stats(sample)
            self.input_dtype_ = raw.dtype.name
            self.input_max_ = float((sample if lazy else X).max())
        else:
            self._check_image_shape(X.shape[1:])
            check_pixel_scale(self, raw if lazy else X, raw.dtype.name, lazy)
        return X

    def _check_image_shape(self, shape):
        expected = getattr(self, "input_shape_", None)
        if not isinstance(expected, tuple) or tuple(shape) == expected:
            return
        name, layout = type(self).__name__, self.layout_
        if shape[0] != expected[0]:
            c, h, w = expected
            hint = ""
            if tuple(shape) == (h, w, c):  # given channels last, fitted first
                hint = (
                    " These look like channels-last images: pass "
                    "X.transpose(0, 3, 1, 2)."
                )
            elif tuple(shape) == (h, c, w):  # given channels first, fitted last
                hint = (
                    " These look like channels-first images: pass "
                    "X.transpose(0, 2, 3, 1)."
                )
            elif shape[0] == 1 and c > 1:
                hint = (
                    " A 3-D array is read as one-channel images: pass a single "
                    "image as X[None]."
                )
            raise ValueError(
                f"X has images with {shape[0]} channel(s), but {name} was fitted on "
                f"images with {c} channel(s) (in {layout} layout: "
                f"(channels, height, width) = {expected}).{hint}"
            )
        raise ValueError(
            f"X has images of {shape[1]}x{shape[2]} pixels, but {name} was fitted "
            f"on images of {expected[1]}x{expected[2]} pixels; resize them (e.g. "
            "with skestimators.preprocessing.ImagePreprocessor)."
        )

    def _prepare_X(self, X, *, reset, finite=True):
        return self._validate_images(X, reset=reset, finite=finite)

    # -- network and augmentation ------------------------------------------------------
    _head_constraint = None

    def _feature_extractor(self):
        """What :class:`~skestimators.nn.PretrainedNet` wraps: an architecture
        name, a module instance, or a module class whose constructor does not
        take ``n_outputs``; None for the package's own networks and for
        classes that build the whole network."""
        module = self.module
        if isinstance(module, str):
            return module if module in ARCHITECTURES else None
        if isinstance(module, torch.nn.Module):
            return module
        accepted = inspect.signature(module.__init__).parameters.values()
        whole = any(p.name == "n_outputs" or p.kind is p.VAR_KEYWORD for p in accepted)
        return None if whole else module

    def _make_module(self, input_shape, n_outputs):
        features = self._feature_extractor()
        if features is not None:
            if isinstance(features, type):
                features = instantiate_module(features, None, input_shape, None, None)
            module = PretrainedNet(
                features,
                input_shape,
                n_outputs,
                # A saved model is rebuilt without the file (weights follow).
                pretrained_weights=(
                    None if _REBUILDING.get() else self.pretrained_weights
                ),
                head_width=self.head_width,
                dropout=self.dropout,
                constraint=self._head_constraint,
                spin_features=self.spin_features,
            )
        else:
            if self.pretrained_weights is not None:
                raise ValueError(
                    f"pretrained_weights needs a torchvision architecture "
                    f"({', '.join(map(repr, ARCHITECTURES))}) or a feature "
                    f"extractor module; module={self.module!r} is trained from "
                    "scratch."
                )
            module = self._make_own_module(input_shape, n_outputs)
            if not isinstance(self.module, str):
                return module
        stats = self.__dict__.get("_input_stats")
        if stats is not None:  # standardise each channel as in the training images
            module.standardize.set(*stats)
        return module

    def _make_own_module(self, input_shape, n_outputs):
        if not isinstance(self.module, str):  # a whole network: depth is not used
            module = instantiate_module(self.module, None, input_shape, n_outputs, None)
            has_own = any(isinstance(m, GalaxyZooConstraint) for m in module.modules())
            if self._head_constraint not in (None, "none") and not has_own:
                # Its raw outputs get the output layer that ``constraint``
                # names, as the package's networks do (it was ignored); a
                # network with its own (GalaxyCNN as a class) keeps that one.
                module = torch.nn.Sequential(
                    module, GalaxyZooConstraint(self._head_constraint)
                )
            return module
        _, height, width = input_shape
        if min(height, width) < 2**self.depth:
            raise ValueError(
                f"Images of {height}x{width} pixels are too small for depth="
                f"{self.depth}: each of the {self.depth} blocks halves them, so "
                f"they need at least {2**self.depth} pixels on a side. Use a "
                "smaller depth or larger images."
            )
        if self.module == "galaxycnn":
            return GalaxyCNN(
                input_shape,
                n_outputs,
                width=self.width,
                depth=self.depth,
                head_width=self.head_width,
                dropout=self.dropout,
                constraint=self._head_constraint,
                spin_features=self.spin_features,
            )
        return GalaxyResNet(
            input_shape,
            n_outputs,
            width=self.width,
            depth=self.depth,
            blocks=self.blocks,
            dropout=self.dropout,
            constraint=self._head_constraint,
            spin_features=self.spin_features,
        )

    def _restore_network(self, spec, state_dict, device, optimizer_state=None):
        with _rebuilding():
            return super()._restore_network(
                spec, state_dict, device, optimizer_state=optimizer_state
            )

    def _feature_lr_factor(self):
        if self.feature_lr_factor == "auto":
            return 0.1 if self.pretrained_weights is not None else 1.0
        return float(self.feature_lr_factor)

    def _module_callbacks(self, config):
        if self.freeze_epochs == 0 or self._feature_extractor() is None:
            return []
        return [("freeze_features", FreezeFeatures(self.freeze_epochs))]

    def _optimizer_options(self, config):
        factor = self._feature_lr_factor()
        if factor == 1.0 or self._feature_extractor() is None:
            return {}
        group = (FEATURES_PATTERN, {"lr": config.lr * factor})
        return {"optimizer__param_groups": [group]}

    def _augmentation(self, *, mirror=True, swap=None, target="class"):
        if not self.augment:
            return None
        zoom = tuple(self.zoom)
        if len(zoom) != 2 or not 0 < float(zoom[0]) <= float(zoom[1]):
            raise ValueError(
                f"zoom must be a range (low, high) with 0 < low <= high, got "
                f"{self.zoom!r}."
            )
        return ImageBatchAugment(
            mirror=mirror,
            max_shift=self.max_shift,
            zoom=zoom,
            swap=swap,
            target=target,
        )

    # -- test-time augmentation ----------------------------------------------------
    def _tta_plan(self, mirror):
        """The dihedral views of ``tta``: a list (with mirror flips if
        ``mirror``), or (``"auto"``) a function of the image shape returning
        those the network's training augmentation drew (:meth:`_training_views`
        at the parameters it was built with)."""
        if self.tta == "auto":
            return self._as_built()._training_views(mirror)
        # tta may be set after fit (set_params skips the constraint checks).
        valid = isinstance(self.tta, numbers.Integral) and not isinstance(
            self.tta, bool
        )
        if not valid or not 1 <= self.tta <= 8:
            raise ValueError(
                f"tta must be 'auto' or an int from 1 to 8 (views averaged at "
                f"prediction); got {self.tta!r}."
            )
        if mirror:
            return list(range(self.tta))
        if self.tta > 4:
            raise ValueError(
                f"tta={self.tta} without mirrored views (mirror='off', or "
                "mirror='swap' with no chirality pair among the classes): "
                "there are only 4 rotations; use tta <= 4."
            )
        return [0, 2, 4, 6][: self.tta]

    def _training_views(self, mirror):
        """The dihedral views the training augmentation draws, as a function
        of the image shape (with mirror flips if ``mirror``)."""
        if not self.augment:
            return [0]

        def views(shape):
            count = 8 if shape[-1] == shape[-2] else 4
            return [k for k in range(count) if mirror or k % 2 == 0]

        return views

    def _view_outputs(self, X, views, *, mc_dropout=False, repeat=1, reduce=None):
        """Raw network outputs for each dihedral view ``k`` of ``X``.

        ``views`` is a list of views or a function of the images' shape that
        returns one (:meth:`_tta_plan`); the views are passed ``repeat``
        times (Monte Carlo dropout draws). Returns a list of ``(output,
        mirrored)``; ``X`` is validated once. With ``reduce`` (see
        ``_forward_views``), the outputs of each batch, views in this order,
        are reduced as they come and the reduced outputs are returned.
        """
        images = self._validated_inputs(X)
        if callable(views):
            views = views(images.shape)
        views = list(views) * repeat
        if max(views) >= 4 and images.shape[2] != images.shape[3]:
            raise ValueError(
                f"tta={self.tta} uses 90 degree rotations, which need square "
                f"images; these are {images.shape[2]}x{images.shape[3]}. Use "
                "tta <= 4 (or <= 2 with mirror='off')."
            )
        transforms = [None if k == 0 else functools.partial(_view, k=k) for k in views]
        outputs = self._forward_views(
            images, transforms, mc_dropout=mc_dropout, reduce=reduce
        )
        if reduce is not None:
            return outputs
        return [(out, k % 2 == 1) for out, k in zip(outputs, views)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Images (n, channels, height, width) or (n, height, width), never a
        # table: fit refuses 2-D X.
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags


def _check_finite_pixels(name, X):
    """Refuse NaN or infinite pixels, naming the images (scikit-learn's own
    message suggests estimators that take missing values, which images
    never reach here)."""
    if X.dtype.kind != "f" or np.isfinite(X.sum(dtype=np.float64)):
        return
    flat = X.reshape(len(X), -1)
    bad = np.flatnonzero(~np.isfinite(flat).all(axis=1))
    if not len(bad):
        return  # finite values whose sum overflowed
    kind = "NaN" if np.isnan(flat[bad]).any() else "infinite values"
    raise ValueError(
        f"X contains {kind} in {len(bad)} image(s) (first at row {bad[0]}); "
        f"{name} needs finite pixels. Fill masked pixels (with 0, or the sky "
        "level) before fitting."
    )


def _file_names(X) -> bool:
    """Whether ``X`` is a sequence of paths (what a folder listing gives)."""
    if isinstance(X, (list, tuple)) and X:
        return all(isinstance(v, (str, os.PathLike)) for v in X)
    return isinstance(X, np.ndarray) and X.dtype.kind in "US" and X.ndim == 1
