"""CNN-LSTM for multi-year raster patches (soil organic carbon from satellite series).

Inputs are patches of shape ``(batch, bands, height, width, years)``, NaN
where a value is missing. A small 2-D CNN, with weights shared across years,
encodes each year's patch and the fraction of it that is available; the
CNN-LSTM runs an LSTM over the yearly codes, the pooled variant averages (or
concatenates) them.
"""

from __future__ import annotations

import torch
from torch import nn

from ._widths import doubling

__all__ = ["CNNLSTM", "PooledCNN"]


def _check_shape(input_shape):
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(
            "input_shape must be (bands, height, width, years) with positive sizes, "
            f"got {input_shape!r}."
        )
    return shape


class _YearEncoder(nn.Module):
    """Conv(3x3) -> ReLU -> MaxPool(2) blocks applied to every year, flattened.

    A block pools only while the patch is at least 2 pixels wide, so small
    windows (5x5 patches) still work.
    """

    def __init__(self, input_shape, conv_channels):
        super().__init__()
        bands, height, width, _ = input_shape
        layers, channels = [], bands + 1  # the bands and their availability
        for out in conv_channels:
            layers += [nn.Conv2d(channels, int(out), 3, padding=1), nn.ReLU()]
            if min(height, width) >= 2:
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            channels = int(out)
        layers.append(nn.Flatten())
        self.net = nn.Sequential(*layers)
        self.input_shape = tuple(input_shape)
        # The CNN's features of a year, then the fraction of it that is available.
        self.n_features = channels * height * width + 1

    def forward(self, x):
        """``(N, bands, H, W, T)`` -> ``(N, T, n_features)``; NaN marks missing data.

        Missing values (clouds, sensor stripes, a missing acquisition) are set
        to 0 and an availability band (the fraction of the bands present at
        each pixel) is added to every year's patch; the fraction of the patch
        that is available is appended to each year's features, so the LSTM
        reads which years it can trust.
        """
        if x.ndim != 5 or tuple(x.shape[1:4]) != self.input_shape[:3]:
            raise ValueError(
                "Expected patches of shape (batch, bands, height, width, years) with "
                f"(bands, height, width) = {self.input_shape[:3]}, got "
                f"{tuple(x.shape)}."
            )
        n, bands, height, width, years = x.shape
        missing = torch.isnan(x)
        available = 1.0 - missing.to(x.dtype).mean(dim=1, keepdim=True)
        x = torch.cat([x.masked_fill(missing, 0.0), available], dim=1)
        frames = x.permute(0, 4, 1, 2, 3).reshape(n * years, bands + 1, height, width)
        features = self.net(frames).reshape(n, years, -1)
        per_year = available.mean(dim=(1, 2, 3)).unsqueeze(-1)  # (N, T, 1)
        return torch.cat([features, per_year], dim=2)


def _head(n_in, hidden, n_outputs, dropout):
    return nn.Sequential(
        nn.Dropout(dropout),
        nn.Linear(n_in, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, n_outputs),
    )


class CNNLSTM(nn.Module):
    """Per-year CNN encoder, LSTM over the years, dense head.

    The architecture of the CNN-LSTM soil organic carbon model for Bavaria
    (``RefittedCovLSTM``) [1]_: the CNN (shared across years) turns each
    year's patch of satellite and environmental covariates into a feature
    vector of the spatial context, the LSTM reads the sequence of years (the
    temporal dynamics of the land surface), and its final state is fused
    (concatenated) with the CNN features of the last year before a
    two-layer dense head.

    Parameters
    ----------
    input_shape : tuple of int, default=(6, 5, 5, 5)
        ``(bands, height, width, years)`` of one sample. Injected by the
        estimators.
    n_outputs : int, default=1
        Number of outputs. Injected by the estimators.
    width : int, default=32
        Output channels of the first conv block (3x3 conv, ReLU, 2x2 max-pool
        while the patch is at least 2 pixels wide); each block doubles them.
    depth : int, default=2
        Number of conv blocks.
    head_width : int, default=64
        LSTM hidden size, also the width of the dense head.
    lstm_layers : int, default=1
        Number of stacked LSTM layers.
    bidirectional : bool, default=False
        Run the LSTM in both directions over the years.
    dropout : float, default=0.2
        Dropout in the head and between stacked LSTM layers.

    Attributes
    ----------
    encoder : torch.nn.Module
        The per-year CNN; ``encoder.n_features`` is its output width.
    lstm : torch.nn.LSTM
        The recurrent layer over years.
    head : torch.nn.Sequential
        The dense head.

    See Also
    --------
    PooledCNN : Same encoder, years pooled instead of read in sequence.

    References
    ----------
    .. [1] "CNN-LSTM Model for Soil Organic Carbon (SOC) Prediction in
       Bavaria", README of the ``RefittedCovLSTM`` research code (LUCAS soil
       survey and multi-temporal satellite imagery, 2007-2023).

    Examples
    --------
    >>> import torch
    >>> from skestimators.nn import CNNLSTM
    >>> net = CNNLSTM(input_shape=(6, 5, 5, 4), width=8, head_width=8)
    >>> net(torch.zeros(3, 6, 5, 5, 4)).shape
    torch.Size([3, 1])
    """

    def __init__(
        self,
        input_shape=(6, 5, 5, 5),
        n_outputs=1,
        width=32,
        depth=2,
        head_width=64,
        lstm_layers=1,
        bidirectional=False,
        dropout=0.2,
    ):
        super().__init__()
        shape = _check_shape(input_shape)
        self.encoder = _YearEncoder(shape, doubling(width, depth))
        self.lstm = nn.LSTM(
            self.encoder.n_features,
            int(head_width),
            num_layers=int(lstm_layers),
            batch_first=True,
            dropout=float(dropout) if lstm_layers > 1 else 0.0,
            bidirectional=bool(bidirectional),
        )
        self._directions = 2 if bidirectional else 1
        fused = int(head_width) * self._directions + self.encoder.n_features
        self.head = _head(fused, int(head_width), int(n_outputs), float(dropout))

    def forward(self, x):
        features = self.encoder(x)
        _, (h_n, _) = self.lstm(features)
        # Final hidden state of the last layer, both directions if bidirectional.
        last = h_n[-self._directions :].transpose(0, 1).reshape(x.shape[0], -1)
        return self.head(torch.cat([last, features[:, -1]], dim=1))


class PooledCNN(nn.Module):
    """Per-year CNN encoder, years pooled, dense head (no recurrence).

    The comparison model for :class:`CNNLSTM`: the same shared per-year
    encoder, with the yearly features averaged (``pooling="mean"``, blind to
    the order of years) or concatenated (``pooling="concat"``, order-aware but
    without recurrence).

    Parameters
    ----------
    input_shape : tuple of int, default=(6, 5, 5, 5)
        ``(bands, height, width, years)`` of one sample. Injected by the
        estimators.
    n_outputs : int, default=1
        Number of outputs. Injected by the estimators.
    width : int, default=32
        Output channels of the first conv block; each block doubles them.
    depth : int, default=2
        Number of conv blocks.
    head_width : int, default=64
        Width of the dense head.
    pooling : {"mean", "concat"}, default="mean"
        How the yearly features are combined.
    dropout : float, default=0.2
        Dropout in the head.

    Attributes
    ----------
    encoder : torch.nn.Module
        The per-year CNN.
    head : torch.nn.Sequential
        The dense head.

    See Also
    --------
    CNNLSTM : The recurrent model.

    Examples
    --------
    >>> import torch
    >>> from skestimators.nn import PooledCNN
    >>> net = PooledCNN(input_shape=(6, 5, 5, 4), n_outputs=2, pooling="concat")
    >>> net(torch.zeros(3, 6, 5, 5, 4)).shape
    torch.Size([3, 2])
    """

    def __init__(
        self,
        input_shape=(6, 5, 5, 5),
        n_outputs=1,
        width=32,
        depth=2,
        head_width=64,
        pooling="mean",
        dropout=0.2,
    ):
        super().__init__()
        if pooling not in ("mean", "concat"):
            raise ValueError(f"pooling must be 'mean' or 'concat', got {pooling!r}.")
        shape = _check_shape(input_shape)
        self.encoder = _YearEncoder(shape, doubling(width, depth))
        self.pooling = pooling
        self._years = shape[3]
        n_in = self.encoder.n_features * (self._years if pooling == "concat" else 1)
        self.head = _head(n_in, int(head_width), int(n_outputs), float(dropout))

    def forward(self, x):
        features = self.encoder(x)
        if self.pooling == "mean":
            return self.head(features.mean(dim=1))
        if features.shape[1] != self._years:
            raise ValueError(
                f"pooling='concat' was built for {self._years} years, got "
                f"{features.shape[1]}."
            )
        return self.head(features.flatten(1))
