"""Pretrained (torchvision) feature extractors with the package's output layers."""

from __future__ import annotations

import copy
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ._galaxy import (
    _ChannelStandardize,
    _check_images,
    _check_input_shape,
    _dense_head,
    _n_spin,
    _spin_branch,
    _with_spin,
)

__all__ = ["ARCHITECTURES", "PretrainedNet"]

#: The torchvision architectures that :class:`PretrainedNet` builds by name.
ARCHITECTURES = ("resnet18", "resnet50", "efficientnet_b0", "convnext_tiny")

#: Parameters of the feature extractor, as named in :class:`PretrainedNet`.
FEATURES_PATTERN = "features.*"

# Operator schemas torchvision registers fake kernels for when it is imported.
_TORCHVISION_OPS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_op_library = []  # keeps the stand-in schemas registered


def _torchvision_models():
    """``torchvision.models``, importable even without torchvision's compiled ops.

    The architectures are plain Python; only torchvision's detection operators
    are compiled. A torchvision build for another variant of the installed
    torch (the CUDA wheel beside a CPU-only torch) cannot load them, and then
    fails on import when it registers their shapes; the two operators it
    needs are then declared (without kernels, never called here) and the
    import is retried.
    """
    try:
        import torchvision.models as models
    except ImportError as exc:
        raise ImportError(
            "The torchvision architectures need torchvision: pip install "
            "'skestimators[vision]' (a torchvision release made for the "
            f"installed torch {torch.__version__})."
        ) from exc
    except RuntimeError as exc:
        if "torchvision::" not in str(exc) or _op_library:
            raise
        for name in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
            del sys.modules[name]
        library = torch.library.Library("torchvision", "FRAGMENT")
        for schema in _TORCHVISION_OPS:
            library.define(schema)
        _op_library.append(library)
        import torchvision.models as models
    return models


def read_state_dict(path) -> dict:
    """The tensors of a local weights file (``.safetensors``, or a PyTorch
    ``.pt``/``.pth`` state dict read with ``weights_only=True``)."""
    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(
            f"The pretrained weights file {str(path)!r} does not exist. Give the "
            "path of a state dict saved on this machine (nothing is downloaded)."
        )
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise ImportError(
                "Reading .safetensors weights needs safetensors: pip install "
                "'skestimators[safe]', or save them with torch.save."
            ) from exc
        try:
            state = load_file(str(path), device="cpu")
        except Exception as exc:  # SafetensorError, or a header that is not JSON
            raise ValueError(
                f"Could not read {str(path)!r} as a safetensors file: {exc}"
            ) from exc
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(
                f"Could not read {str(path)!r} as a PyTorch state dict: {exc}"
            ) from exc
    if not isinstance(state, dict) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ValueError(
            f"{str(path)!r} does not hold a state dict (a mapping of parameter "
            "names to tensors, as model.state_dict() returns)."
        )
    return state


def _load_weights(model: nn.Module, state: dict, path, skip: str | None) -> None:
    """Load ``state`` into ``model``; keys under ``skip`` (the classifier that is
    replaced) are optional. Unmatched keys or shapes raise a ValueError."""
    if skip is not None:
        state = {k: v for k, v in state.items() if not k.startswith(skip + ".")}
    own = model.state_dict()
    wrong = [
        f"{k} {tuple(v.shape)} (expected {tuple(own[k].shape)})"
        for k, v in state.items()
        if k in own and own[k].shape != v.shape
    ]
    missing = [
        k
        for k in own
        if k not in state and (skip is None or not k.startswith(skip + "."))
    ]
    unexpected = [k for k in state if k not in own]
    if wrong or missing or unexpected:

        def shown(keys):
            return ", ".join(keys[:5]) + (
                f" and {len(keys) - 5} more" if keys[5:] else ""
            )

        parts = [
            f"{what} keys: {shown(keys)}"
            for what, keys in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("mismatched", wrong),
            )
            if keys
        ]
        raise ValueError(
            f"The weights in {os.fspath(path)!r} do not match the architecture "
            f"{type(model).__name__}: " + "; ".join(parts) + "."
        )
    model.load_state_dict(state, strict=False)


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def adapt_first_conv(model: nn.Module, channels: int) -> None:
    """Give the first convolution of ``model`` ``channels`` input channels.

    The rule of timm's ``adapt_input_conv``: for one channel, the kernels of
    the original input channels are summed, so that a grey image gives the
    response the RGB network gives to the same grey image in R, G and B;
    for other counts they are cycled over the new channels (R, G, B, R, G,
    ... for 3-channel weights) and scaled by ``old / new`` channels, which
    keeps the scale of the response (exactly so when ``channels`` is a
    multiple of the original count).
    """
    name, conv = next(
        ((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)),
        (None, None),
    )
    if conv is None:
        raise ValueError(f"{type(model).__name__} has no 2-D convolution to adapt.")
    old = conv.in_channels
    if old == channels:
        return
    if conv.groups != 1:
        raise ValueError(f"Cannot adapt the grouped convolution {name} to {channels}.")
    new = nn.Conv2d(
        channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    )
    with torch.no_grad():
        if channels == 1:
            new.weight.copy_(conv.weight.sum(dim=1, keepdim=True))
        else:
            index = torch.arange(channels) % old
            new.weight.copy_(conv.weight[:, index] * (old / channels))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    _replace(model, name, new)


def _torchvision_features(name: str, channels: int, weights) -> tuple:
    """A torchvision architecture without its classifier: ``(module, n_features)``."""
    model = getattr(_torchvision_models(), name)(weights=None)  # never downloads
    head, linear = [
        (n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)
    ][-1]
    if weights is not None:
        _load_weights(model, read_state_dict(weights), weights, skip=head)
    _replace(model, head, nn.Identity())
    adapt_first_conv(model, channels)
    return model, linear.in_features


class PretrainedNet(nn.Module):
    """A (pretrained) image feature extractor followed by the estimator's head.

    The feature extractor is a torchvision architecture built by name with
    random weights, then (with ``pretrained_weights``) given the weights of a
    local file, never downloaded; its ImageNet classifier (the last linear
    layer) is removed and its first convolution adapted to the number of
    channels (see :func:`adapt_first_conv`). Any other ``torch.nn.Module``
    that maps images to ``(n, features)`` or to feature maps ``(n, C, H, W)``
    (averaged globally) can be the feature extractor; a forward pass on an
    empty image finds its number of features. On top come the head of
    :class:`GalaxyCNN`: a dense layer of ``head_width`` units with ReLU
    (none with ``head_width=None``), dropout, a linear output layer and the
    Galaxy Zoo constraint.

    Each input channel is standardised with statistics that the estimators
    set from the training images, whatever the weights. ImageNet's channel
    means and standard deviations bring ImageNet photographs to zero mean
    and unit variance, the inputs the pretrained filters were trained on;
    galaxy images (dark sky, fluxes in other units, other bands) are far
    from those statistics, and their own statistics bring them to the same
    zero mean and unit variance. Images smaller than ``min_size`` pixels on
    a side are enlarged (bilinear, keeping their aspect) so that the
    shorter side is ``min_size``: the named architectures divide the image
    by 32 before pooling.

    Parameters
    ----------
    module : {"resnet18", "resnet50", "efficientnet_b0", "convnext_tiny"} or \
torch.nn.Module, default="resnet18"
        The feature extractor: a torchvision architecture (ResNet [1]_,
        EfficientNet [2]_, ConvNeXt [3]_), or a module (copied).
    input_shape : tuple of int, default=(3, 69, 69)
        ``(channels, height, width)`` of the images.
    n_outputs : int, default=37
        Number of outputs: 37 for the Galaxy Zoo answers, or the number of
        classes (logits).
    pretrained_weights : str, path or None, default=None
        A local state dict of the architecture with 3 input channels (as
        ``torch.save(model.state_dict(), path)`` writes it, or a
        ``.safetensors`` file); the weights of its classifier are not
        needed and are ignored. None: random weights.
    min_size : int, default=32
        Smallest side, in pixels, of the images given to the feature
        extractor.
    head_width : int or None, default=None
        Units of the dense layer after the features; None: none.
    dropout : float, default=0.0
        Dropout before the output layer.
    constraint : {"auto", "divisive", "softmax", "none"} or None, default="auto"
        Output layer: see :class:`GalaxyZooConstraint`.
    spin_features : bool, default=False
        Concatenate the :class:`SpinFeatures` of the standardised image
        (before any resizing), batch-normalised, to the pooled features;
        the images must then all have the ``input_shape`` given here.

    Attributes
    ----------
    n_features : int
        Number of features of the feature extractor (the head also gets the
        spin features, if any).

    See Also
    --------
    GalaxyCNN : A small network trained from scratch.

    References
    ----------
    .. [1] K. He, X. Zhang, S. Ren and J. Sun, "Deep residual learning for
       image recognition", CVPR, 770-778, 2016.
    .. [2] M. Tan and Q. V. Le, "EfficientNet: rethinking model scaling for
       convolutional neural networks", ICML, 6105-6114, 2019.
    .. [3] Z. Liu et al., "A ConvNet for the 2020s", CVPR, 11976-11986, 2022.

    Examples
    --------
    >>> import torch
    >>> from skestimators.nn import PretrainedNet
    >>> features = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.ReLU())
    >>> net = PretrainedNet(features, input_shape=(1, 20, 20), n_outputs=4)
    >>> net.n_features
    8
    >>> net(torch.rand(2, 1, 20, 20)).shape
    torch.Size([2, 4])
    """

    def __init__(
        self,
        module: str | nn.Module = "resnet18",
        input_shape: Sequence[int] = (3, 69, 69),
        n_outputs: int = 37,
        *,
        pretrained_weights=None,
        min_size: int = 32,
        head_width: int | None = None,
        dropout: float = 0.0,
        constraint: str | None = "auto",
        spin_features: bool = False,
    ):
        super().__init__()
        self.input_shape = _check_input_shape(input_shape, 1)
        self.min_size = int(min_size)
        self.standardize = _ChannelStandardize(self.input_shape[0])
        if isinstance(module, str):
            if module not in ARCHITECTURES:
                raise ValueError(
                    f"module must be one of {ARCHITECTURES} or a torch.nn.Module, "
                    f"got {module!r}."
                )
            self.features, n_features = _torchvision_features(
                module, self.input_shape[0], pretrained_weights
            )
        elif isinstance(module, nn.Module):
            self.features = copy.deepcopy(module)
            if pretrained_weights is not None:
                state = read_state_dict(pretrained_weights)
                _load_weights(self.features, state, pretrained_weights, skip=None)
            n_features = self._probe()
        else:
            raise TypeError(
                f"module must be an architecture name or a torch.nn.Module, got "
                f"{module!r}."
            )
        self.n_features = int(n_features)
        self.spin = _spin_branch(self.input_shape, spin_features)
        self.head, self.constraint = _dense_head(
            self.n_features + _n_spin(self.spin),
            n_outputs,
            head_width,
            dropout,
            constraint,
        )

    def _probe(self) -> int:
        """Number of features of the extractor, from one forward pass."""
        x = self._resize(torch.zeros(1, *self.input_shape))
        was_training = self.features.training
        self.features.eval()
        try:
            with torch.no_grad():
                z = self._pool(self.features(x))
        except Exception as exc:
            raise ValueError(
                f"The feature extractor {type(self.features).__name__} failed on "
                f"an image of shape {tuple(x.shape[1:])}: {exc}"
            ) from exc
        finally:
            self.features.train(was_training)
        return z.shape[1]

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if min(height, width) >= self.min_size:
            return x
        scale = self.min_size / min(height, width)
        size = (math.ceil(height * scale), math.ceil(width * scale))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    @staticmethod
    def _pool(z) -> torch.Tensor:
        if not isinstance(z, torch.Tensor) or z.ndim not in (2, 4):
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z)
            raise ValueError(
                "A feature extractor must return a tensor (n, features) or "
                f"feature maps (n, channels, height, width), got {shape}."
            )
        return z.mean(dim=(2, 3)) if z.ndim == 4 else z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.input_shape[0], "PretrainedNet")
        x = self.standardize(x)
        z = _with_spin(self._pool(self.features(self._resize(x))), self.spin, x)
        return self.constraint(self.head(z))
