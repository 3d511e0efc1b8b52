"""Two-input networks for spectra plus tabular parameters (exoplanet spectra).

Spectra arrive channels-last, ``(n, n_wavelengths, n_channels)`` as stored on
disk, or already flattened to ``(n, n_features)`` by feature engineering; the
auxiliary input is ``(n, n_aux)``. Each branch maps the spectrum to a feature
vector; the merged features feed one logit per named target.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from ._widths import halving

BRANCHES = ("conv1d", "attention", "lstm", "dense")


def _mlp(n_in, widths, dropout, batch_norm=False):
    layers = []
    for width in widths:
        layers.append(nn.Linear(n_in, width))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.ReLU())
        if dropout:
            layers.append(nn.Dropout(dropout))
        n_in = width
    return nn.Sequential(*layers), n_in


def _channels_first(x):
    if x.ndim == 2:  # (n, L): one channel
        return x.unsqueeze(1)
    return x.transpose(1, 2)  # (n, L, C) -> (n, C, L)


def _length_channels(shape):
    shape = tuple(shape)
    if len(shape) == 1:
        return shape[0], 1
    if len(shape) != 2:
        raise ValueError(
            "spectra must be (n, n_wavelengths) or (n, n_wavelengths, n_channels); "
            f"got sample shape {shape}."
        )
    return shape


class Conv1DBranch(nn.Module):
    """Conv1d-BN-ReLU blocks with max pooling along wavelength.

    One block (``depth=1``) is the plain 1-D CNN baseline: local filters
    that respond to the shape of a band wherever it sits.
    """

    def __init__(self, spectra_shape, width=64, depth=2, kernel_size=5, dropout=0.0):
        super().__init__()
        length, channels = _length_channels(spectra_shape)
        blocks, c_in = [], channels
        for i in range(depth):
            c_out = width * 2 ** min(i, 2)
            blocks += [
                nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2),
                nn.BatchNorm1d(c_out),
                nn.ReLU(),
            ]
            if length >= 4:
                blocks.append(nn.MaxPool1d(2))
                length //= 2
            c_in = c_out
        self.body = nn.Sequential(*blocks, nn.Flatten(), nn.Dropout(dropout))
        self.n_features = c_in * length

    def forward(self, spectra, aux_features=None):
        return self.body(_channels_first(spectra))


class AttentionBranch(nn.Module):
    """Convolution whose channels are gated by the auxiliary features.

    A sigmoid of the stellar and orbital features scales each convolution
    channel (an attention-like gate), so the star and the orbit decide which
    spectral patterns count, before pooling over wavelength.
    """

    def __init__(
        self,
        spectra_shape,
        aux_features,
        width=64,
        depth=2,
        kernel_size=5,
        dropout=0.0,
        positions=0,
    ):
        super().__init__()
        _, channels = _length_channels(spectra_shape)
        blocks, c_in = [], channels
        for _ in range(depth):
            blocks += [
                nn.Conv1d(c_in, width, kernel_size, padding=kernel_size // 2),
                nn.BatchNorm1d(width),
                nn.ReLU(),
            ]
            c_in = width
        self.conv = nn.Sequential(*blocks)
        self.gate = nn.Sequential(nn.Linear(aux_features, width), nn.Sigmoid())
        self.dropout = nn.Dropout(dropout)
        # Gated channels are summarised by their mean and max over wavelength
        # and, to keep where features sit (absorption bands have fixed
        # wavelengths), by their average over ``positions`` wavelength bins.
        self.pool = nn.AdaptiveAvgPool1d(positions) if positions else None
        self.n_features = 2 * width + width * positions

    def forward(self, spectra, aux_features):
        h = self.conv(_channels_first(spectra)) * self.gate(aux_features).unsqueeze(2)
        parts = [h.mean(2), h.amax(2)]
        if self.pool is not None:
            parts.append(self.pool(h).flatten(1))
        return self.dropout(torch.cat(parts, 1))


class LSTMBranch(nn.Module):
    """LSTM that reads the spectrum as a sequence over wavelength.

    Its features are the last hidden states of both directions, with
    ``dropout`` applied to them (and between stacked layers when ``depth``
    is above 1), as the other branches apply it to their features.
    """

    def __init__(
        self, spectra_shape, width=64, depth=1, dropout=0.0, bidirectional=True
    ):
        super().__init__()
        _, channels = _length_channels(spectra_shape)
        self.lstm = nn.LSTM(
            channels,
            width,
            num_layers=depth,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if depth > 1 else 0.0,
        )
        # torch's LSTM drops out only between layers: at depth 1 the branch
        # had no dropout at all.
        self.dropout = nn.Dropout(dropout)
        self.n_features = width * (2 if bidirectional else 1)

    def forward(self, spectra, aux_features=None):
        x = spectra.unsqueeze(2) if spectra.ndim == 2 else spectra
        _, (h, _) = self.lstm(x)
        if self.lstm.bidirectional:
            return self.dropout(torch.cat([h[-2], h[-1]], 1))
        return self.dropout(h[-1])


class DenseBranch(nn.Module):
    """Dense layers on the flattened (engineered) spectrum features.

    Meant for engineered inputs such as the depth with its gradient along
    wavelength, which exposes the edges of absorption bands to a plain
    multilayer perceptron.
    """

    def __init__(self, spectra_shape, width=256, depth=2, dropout=0.3):
        super().__init__()
        widths = [max(int(width) // (2**i), 8) for i in range(depth)]
        self.flatten = nn.Flatten()
        self.body, self.n_features = _mlp(
            int(math.prod(spectra_shape)), widths, dropout, batch_norm=True
        )

    def forward(self, spectra, aux_features=None):
        return self.body(self.flatten(spectra))


def _make_branch(name, spectra_shape, n_aux, width, depth, dropout, positions=0):
    if name == "conv1d":
        return Conv1DBranch(spectra_shape, width, depth, dropout=dropout)
    if name == "attention":
        return AttentionBranch(
            spectra_shape, n_aux, width, depth, dropout=dropout, positions=positions
        )
    if name == "lstm":
        return LSTMBranch(spectra_shape, width, depth, dropout=dropout)
    return DenseBranch(spectra_shape, width, depth, dropout=dropout)


class SpectraAuxNet(nn.Module):
    """Spectrum branch(es) + auxiliary branch, merged, one logit per named target.

    Parameters
    ----------
    input_shape : dict of str to tuple
        Sample shapes of the two inputs (injected by the estimator).
    target_names : list of str
        One output (a logit) per name; ``forward`` returns a dict.
    module : {"conv1d", "attention", "lstm", "dense"} or tuple, default="conv1d"
        Spectrum branch; a tuple runs several branches side by side and
        concatenates their features.
    width : int, default=64
        Channels (conv/attention), hidden units (lstm) or first-layer units (dense).
    depth : int, default=2
        Conv blocks, LSTM layers or dense layers.
    dropout : float, default=0.2
        Dropout in the branch and the merged layers.
    aux_width : int, default=32
        Units of the first layer of the auxiliary branch; each further layer
        halves them.
    aux_depth : int, default=2
        Layers of the auxiliary branch (0: the raw auxiliary values).
    merge : {"concat", "gated"}, default="concat"
        ``"gated"`` multiplies the spectrum features by a sigmoid gate computed
        from the auxiliary features before concatenating.
    head_width : int, default=64
        Width of the shared layer after the merge.
    spectra_key, aux_key : str
        Names of the inputs.
    positions : int, default=0
        Attention branch: also keep the gated channels averaged over this many
        wavelength bins (where absorption bands sit matters); 0 keeps only
        their mean and maximum over wavelength (global pooling).

    Examples
    --------
    >>> import torch
    >>> from skestimators.nn import SpectraAuxNet
    >>> net = SpectraAuxNet({"spectra": (52, 3), "aux": (5,)}, ["water", "cloud"])
    >>> out = net(spectra=torch.zeros(4, 52, 3), aux=torch.zeros(4, 5))
    >>> sorted(out), out["water"].shape
    (['cloud', 'water'], torch.Size([4, 1]))
    """

    def __init__(
        self,
        input_shape,
        target_names,
        module="conv1d",
        width=64,
        depth=2,
        dropout=0.2,
        aux_width=32,
        aux_depth=2,
        merge="concat",
        head_width=64,
        spectra_key="spectra",
        aux_key="aux",
        positions=0,
    ):
        super().__init__()
        names = (module,) if isinstance(module, str) else tuple(module)
        if not names or any(b not in BRANCHES for b in names):
            raise ValueError(
                f"module must be one of {BRANCHES} or a tuple of them, got {module!r}."
            )
        if merge not in ("concat", "gated"):
            raise ValueError(f"merge must be 'concat' or 'gated', got {merge!r}.")
        # Checked here, not only by the estimator: torch's shape errors at the
        # first forward pass named none of them.
        for name, value, low in [
            ("width", width, 1), ("depth", depth, 1), ("head_width", head_width, 1),
            ("aux_width", aux_width, 1), ("aux_depth", aux_depth, 0),
            ("positions", positions, 0),
        ]:  # fmt: skip
            if not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
        missing = [k for k in (spectra_key, aux_key) if k not in input_shape]
        if missing:
            raise ValueError(
                f"SpectraAuxNet needs inputs {spectra_key!r} and {aux_key!r}; "
                f"missing {missing} among {list(input_shape)}."
            )
        self.spectra_key, self.aux_key = spectra_key, aux_key
        spectra_shape = input_shape[spectra_key]
        n_aux = int(math.prod(input_shape[aux_key]))
        self.aux_branch, aux_out = _mlp(n_aux, list(halving(aux_width, aux_depth)), 0.0)
        self.branches = nn.ModuleList(
            _make_branch(name, spectra_shape, aux_out, width, depth, dropout, positions)
            for name in names
        )
        n_spec = sum(b.n_features for b in self.branches)
        self.gate = (
            nn.Sequential(nn.Linear(aux_out, n_spec), nn.Sigmoid())
            if merge == "gated"
            else None
        )
        self.shared, n_shared = _mlp(n_spec + aux_out, [head_width], dropout)
        self.heads = nn.ModuleDict(
            {name: nn.Linear(n_shared, 1) for name in target_names}
        )

    def forward(self, **inputs):
        spectra = inputs[self.spectra_key]
        aux = self.aux_branch(inputs[self.aux_key].flatten(1))
        h = torch.cat([branch(spectra, aux) for branch in self.branches], 1)
        if self.gate is not None:
            h = h * self.gate(aux)
        h = self.shared(torch.cat([h, aux], 1))
        return {name: head(h) for name, head in self.heads.items()}
