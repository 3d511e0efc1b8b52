"""Galaxy image networks and the Galaxy Zoo decision-tree output layer."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..galaxy_zoo import GALAXY_ZOO_COLUMNS, GALAXY_ZOO_QUESTIONS
from ._spin import SpinFeatures
from ._widths import doubling

__all__ = ["GalaxyCNN", "GalaxyResNet", "GalaxyZooConstraint"]

_N_TARGETS = len(GALAXY_ZOO_COLUMNS)
_MODES = ("divisive", "softmax", "none")
# Where each question's parent answer sits among the groups built before it:
# (index of its question, column within that question), or None for Q1 and Q6.
_PARENT_SLOTS = tuple(
    None
    if q.parent is None
    else next(
        (i, q.parent - p.start)
        for i, p in enumerate(GALAXY_ZOO_QUESTIONS)
        if p.start <= q.parent < p.stop
    )
    for q in GALAXY_ZOO_QUESTIONS
)


class GalaxyZooConstraint(nn.Module):
    """Map 37 raw outputs to vote fractions that obey the Galaxy Zoo tree.

    Questions are processed in tree order. Each question's raw outputs are
    turned into a distribution over its answers, which is then multiplied by
    the value of the (already constrained) answer that leads to the question,
    so every question's answers sum to its parent answer, and Q1 and Q6 sum
    to 1 -- the output layer of the winning Galaxy Challenge solution [1]_.
    The targets are vote fractions of volunteers who walk the Galaxy Zoo 2
    decision tree [2]_, each answer weighted by the fraction of votes that
    reached its question; obeying the tree keeps the predicted fractions
    consistent with one another. Half-precision outputs (float16, bfloat16,
    autocast) are constrained in float32 and returned in their own dtype.

    Parameters
    ----------
    mode : {"divisive", "softmax", "none"}, default="divisive"
        ``"divisive"`` rectifies the outputs (ReLU) and divides each group by
        its sum, as in [1]_, with ``eps`` added to each rectified output
        (where [1]_ adds a tiny constant to the sum alone): ``(relu(z) + eps)
        / sum(relu(z) + eps)``, so a group whose outputs are all negative
        becomes uniform instead of all zero. ``"softmax"`` applies a softmax
        per group. ``"none"`` returns the raw outputs unchanged (a plain
        linear head trained with MSE).
    eps : float, default=1e-6
        Added to each rectified output in ``"divisive"`` mode.

    See Also
    --------
    skestimators.galaxy_zoo.project_galaxy_zoo : The same projection in NumPy,
        for post-processing predictions of any model.

    References
    ----------
    .. [1] S. Dieleman, K. W. Willett and J. Dambre, "Rotation-invariant
       convolutional neural networks for galaxy morphology prediction",
       MNRAS 450, 1441-1459, 2015.
    .. [2] K. W. Willett et al., "Galaxy Zoo 2: detailed morphological
       classifications for 304,122 galaxies from the Sloan Digital Sky
       Survey", MNRAS 435, 2835-2860, 2013.

    Examples
    --------
    >>> import torch
    >>> from skestimators.nn import GalaxyZooConstraint
    >>> out = GalaxyZooConstraint("softmax")(torch.randn(4, 37))
    >>> out.shape
    torch.Size([4, 37])
    >>> bool(torch.allclose(out[:, 0:3].sum(1), torch.ones(4)))  # Q1 sums to 1
    True
    >>> bool(torch.allclose(out[:, 3:5].sum(1), out[:, 1]))  # Q2 sums to A1.2
    True
    """

    def __init__(self, mode: str = "divisive", eps: float = 1e-6):
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}.")
        if not eps > 0:
            raise ValueError(f"eps must be positive, got {eps!r}.")
        self.mode = mode
        self.eps = float(eps)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != _N_TARGETS:
            raise ValueError(
                f"GalaxyZooConstraint expects {_N_TARGETS} outputs in the last "
                f"dimension, got shape {tuple(x.shape)}."
            )
        if self.mode == "none":
            return x
        # In half precision (float16, bfloat16, autocast) a group's sum of
        # large outputs overflows to inf (zeroing the group) and an inf
        # output turns into NaN: the tree is computed in float32 (or the
        # input's wider dtype) on outputs clamped to where every group's sum
        # stays finite (an inf output is then the largest one).
        dtype = torch.promote_types(x.dtype, torch.float32)
        bound = torch.finfo(dtype).max / _N_TARGETS
        wide = x.to(dtype).clamp(-bound, bound)
        groups: list[torch.Tensor] = []
        for question, slot in zip(GALAXY_ZOO_QUESTIONS, _PARENT_SLOTS):
            z = wide[..., question.start : question.stop]
            if self.mode == "divisive":
                z = torch.relu(z) + self.eps
                z = z / z.sum(dim=-1, keepdim=True)
            else:
                z = torch.softmax(z, dim=-1)
            if slot is not None:
                i, j = slot
                z = z * groups[i][..., j : j + 1]
            groups.append(z)
        return torch.cat(groups, dim=-1).to(x.dtype)


def _head(n_outputs: int, constraint: str | None) -> nn.Module:
    """The output layer for ``n_outputs`` and a ``constraint`` choice."""
    if constraint == "auto":
        constraint = "divisive" if n_outputs == _N_TARGETS else None
    if constraint is None:
        return nn.Identity()
    if constraint not in _MODES:
        raise ValueError(
            f"constraint must be 'auto', None or one of {_MODES}, got {constraint!r}."
        )
    if n_outputs != _N_TARGETS:
        raise ValueError(
            f"constraint={constraint!r} needs n_outputs={_N_TARGETS} (the Galaxy "
            f"Zoo answers), got n_outputs={n_outputs}; use constraint=None for "
            "a plain classifier or regressor head."
        )
    return GalaxyZooConstraint(constraint)


def _check_input_shape(input_shape: Sequence[int], min_size: int) -> tuple:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3:
        raise ValueError(
            f"input_shape must be (channels, height, width), got {input_shape!r}."
        )
    if shape[0] < 1 or min(shape[1:]) < min_size:
        raise ValueError(
            f"input_shape {shape} is too small: images must be at least "
            f"{min_size}x{min_size} pixels with at least one channel."
        )
    return shape


def _init_output(linear: nn.Linear, constraint: nn.Module) -> None:
    # A small positive bias keeps the rectified outputs alive at the start.
    if isinstance(constraint, GalaxyZooConstraint) and constraint.mode == "divisive":
        nn.init.constant_(linear.bias, 0.1)


def _dense_head(
    n_features: int,
    n_outputs: int,
    head_width: int | None,
    dropout: float,
    constraint: str | None,
) -> tuple[nn.Module, nn.Module]:
    """``(head, constraint)``: an optional dense layer of ``head_width`` units
    with ReLU, dropout and the output layer; then the output constraint."""
    if head_width is not None and head_width < 1:
        raise ValueError(f"head_width must be None or >= 1, got {head_width!r}.")
    hidden: list[nn.Module] = []
    if head_width is not None:
        hidden = [nn.Linear(n_features, head_width), nn.ReLU(inplace=True)]
        n_features = head_width
    output = nn.Linear(n_features, n_outputs)
    constraint_layer = _head(n_outputs, constraint)
    _init_output(output, constraint_layer)
    return nn.Sequential(*hidden, nn.Dropout(dropout), output), constraint_layer


def _spin_branch(input_shape, spin_features):
    """The :class:`SpinFeatures` of the network (normalised), or None."""
    if not spin_features:
        return None
    spin = SpinFeatures(input_shape[1:])
    # The statistics lie in [-1, 1] but are often small: batch normalisation
    # gives them the scale of the pooled features.
    return nn.Sequential(spin, nn.BatchNorm1d(spin.n_features))


def _n_spin(branch):
    return 0 if branch is None else branch[0].n_features


def _with_spin(z, branch, x):
    """The pooled features ``z``, with the spin features of ``x`` when used."""
    return z if branch is None else torch.cat([z, branch(x)], dim=1)


def _check_images(x, channels, name):
    """Raise unless ``x`` is a batch of images ``(n, channels, height, width)``."""
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(
            f"{name} expects images of shape (n, {channels}, height, width), "
            f"got {tuple(x.shape)}."
        )


class _ChannelStandardize(nn.Module):
    """Subtract a per-channel mean and divide by a per-channel standard deviation.

    The statistics are buffers (saved with the weights), the identity until
    :meth:`set` is called, as the image estimators do in ``fit`` with the
    statistics of the training images.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels, 1, 1))
        self.register_buffer("std", torch.ones(channels, 1, 1))

    def set(self, mean, std) -> None:
        mean = torch.as_tensor(mean, dtype=torch.float32).reshape(self.mean.shape)
        std = torch.as_tensor(std, dtype=torch.float32).reshape(self.std.shape)
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all()):
            raise ValueError("The channel statistics must be finite.")
        self.mean.copy_(mean)
        self.std.copy_(torch.clamp(std, min=1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class GalaxyCNN(nn.Module):
    """A plain CNN for galaxy images: convolution blocks and global average pooling.

    The input is standardised per channel (statistics set by the estimators
    in ``fit``, the identity otherwise), then ``depth`` blocks of 3x3
    convolution, batch normalisation, ReLU and 2x2 max pooling (``width``
    channels, doubling at each block: 32, 64, 128 and 256 by default),
    global average pooling, a dense layer of ``head_width`` units with ReLU
    (none with ``head_width=None``), dropout, and a linear output layer
    followed by the Galaxy Zoo constraint.

    Global average pooling (instead of flattening the last feature map into
    a large dense layer) has far fewer weights, so it overfits a few thousand
    images less, and it is blind to where in the stamp a feature lies [1]_.
    On 3,000 real SDSS galaxies with Galaxy Zoo 1 classes, it raised the
    balanced accuracy of :class:`~skestimators.ImageClassifier` well above
    that of the former flattened head (see ``benchmarks/galaxy.py``).

    Parameters
    ----------
    input_shape : tuple of int, default=(3, 69, 69)
        ``(channels, height, width)`` of the images; at least
        ``2 ** depth`` pixels on a side.
    n_outputs : int, default=37
        Number of outputs: 37 for the Galaxy Zoo answers, or the number of
        classes (logits) when used as a classifier.
    width : int, default=32
        Channels of the first convolution block; each block doubles them and
        halves the image.
    depth : int, default=4
        Number of convolution blocks.
    head_width : int or None, default=512
        Units of the dense layer after the pooling; None: no dense layer,
        the pooled features go straight to the output layer.
    dropout : float, default=0.5
        Dropout before the output layer.
    constraint : {"auto", "divisive", "softmax", "none"} or None, default="auto"
        Output layer: see :class:`GalaxyZooConstraint`. ``"auto"`` means
        ``"divisive"`` when ``n_outputs == 37`` and ``None`` otherwise;
        ``None`` returns raw outputs (logits for a classifier).
    spin_features : bool, default=False
        Concatenate the :class:`SpinFeatures` of the (standardised) image,
        batch-normalised, to the pooled features: which way its structures
        wind about the centre, what tells clockwise from anticlockwise
        spirals.

    See Also
    --------
    GalaxyResNet : A deeper residual network with the same interface.

    References
    ----------
    .. [1] M. Lin, Q. Chen and S. Yan, "Network in network", International
       Conference on Learning Representations, 2014.

    Examples
    --------
    >>> import torch
    >>> from skestimators.nn import GalaxyCNN
    >>> net = GalaxyCNN(input_shape=(3, 32, 32)).eval()
    >>> net(torch.rand(2, 3, 32, 32)).shape
    torch.Size([2, 37])
    >>> GalaxyCNN(input_shape=(3, 32, 32), n_outputs=6)(torch.rand(2, 3, 32, 32)).shape
    torch.Size([2, 6])
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (3, 69, 69),
        n_outputs: int = 37,
        *,
        width: int = 32,
        depth: int = 4,
        head_width: int | None = 512,
        dropout: float = 0.5,
        constraint: str | None = "auto",
        spin_features: bool = False,
    ):
        super().__init__()
        channels = doubling(width, depth)
        self.input_shape = _check_input_shape(input_shape, 2 ** len(channels))
        self.standardize = _ChannelStandardize(self.input_shape[0])
        blocks: list[nn.Module] = []
        c_in = self.input_shape[0]
        for c in channels:
            blocks += [
                nn.Conv2d(c_in, c, 3, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c_in = c
        blocks += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*blocks)
        self.spin = _spin_branch(self.input_shape, spin_features)
        self.head, self.constraint = _dense_head(
            c_in + _n_spin(self.spin), n_outputs, head_width, dropout, constraint
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"GalaxyCNN expects images of shape (n, *{self.input_shape}), "
                f"got {tuple(x.shape)}."
            )
        x = self.standardize(x)
        return self.constraint(self.head(_with_spin(self.features(x), self.spin, x)))


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        nn.init.zeros_(self.body[-1].weight)  # each block starts as identity
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                nn.BatchNorm2d(c_out),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class GalaxyResNet(nn.Module):
    """A small residual network for galaxy images.

    Per-channel input standardisation (as in :class:`GalaxyCNN`), a 3x3
    stem convolution and 2x2 max pooling, then ``depth`` stages of
    ``blocks`` basic residual blocks, with ``width`` channels doubling at each
    stage (each stage after the first halves the image), global average
    pooling, dropout and a linear output layer followed by the Galaxy Zoo
    constraint. The last batch
    normalisation of every block starts at zero, so each block starts as the
    identity.

    Parameters
    ----------
    input_shape : tuple of int, default=(3, 69, 69)
        ``(channels, height, width)`` of the images; at least 16x16.
    n_outputs : int, default=37
        Number of outputs: 37 for the Galaxy Zoo answers, or the number of
        classes (logits) when used as a classifier.
    width : int, default=32
        Channels of the first stage; each stage doubles them.
    depth : int, default=4
        Number of stages.
    blocks : int, default=2
        Residual blocks per stage.
    dropout : float, default=0.3
        Dropout before the output layer.
    constraint : {"auto", "divisive", "softmax", "none"} or None, default="auto"
        Output layer: see :class:`GalaxyZooConstraint`. ``"auto"`` means
        ``"divisive"`` when ``n_outputs == 37`` and ``None`` otherwise.
    spin_features : bool, default=False
        Concatenate the :class:`SpinFeatures` of the (standardised) image,
        batch-normalised, to the pooled features: which way its structures
        wind about the centre, what tells clockwise from anticlockwise
        spirals.

    See Also
    --------
    GalaxyCNN : A plain network of four convolution blocks.

    Examples
    --------
    >>> import torch
    >>> from skestimators.nn import GalaxyResNet
    >>> net = GalaxyResNet(input_shape=(3, 24, 24), width=8, depth=2, blocks=1).eval()
    >>> net(torch.rand(2, 3, 24, 24)).shape
    torch.Size([2, 37])
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (3, 69, 69),
        n_outputs: int = 37,
        *,
        width: int = 32,
        depth: int = 4,
        blocks: int = 2,
        dropout: float = 0.3,
        constraint: str | None = "auto",
        spin_features: bool = False,
    ):
        super().__init__()
        widths = doubling(width, depth)
        if blocks < 1 or not widths:
            raise ValueError("GalaxyResNet needs at least one stage of one block.")
        self.input_shape = _check_input_shape(input_shape, 2 ** len(widths))
        self.standardize = _ChannelStandardize(self.input_shape[0])
        layers: list[nn.Module] = [
            nn.Conv2d(self.input_shape[0], widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
        c_in = widths[0]
        for i, c in enumerate(widths):
            for b in range(blocks):
                stride = 2 if (i > 0 and b == 0) else 1
                layers.append(_BasicBlock(c_in, c, stride))
                c_in = c
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.spin = _spin_branch(self.input_shape, spin_features)
        output = nn.Linear(c_in + _n_spin(self.spin), n_outputs)
        self.constraint = _head(n_outputs, constraint)
        _init_output(output, self.constraint)
        self.head = nn.Sequential(nn.Dropout(dropout), output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.input_shape[0], "GalaxyResNet")
        x = self.standardize(x)
        return self.constraint(self.head(_with_spin(self.features(x), self.spin, x)))
