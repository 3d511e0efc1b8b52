"""Layer widths from the package's two size parameters, ``width`` and ``depth``."""

from __future__ import annotations


def doubling(width, depth):
    """Widths of ``depth`` blocks starting at ``width`` and doubling, as in
    most convolutional networks (the image halves, the channels double).

    Examples
    --------
    >>> doubling(32, 4)
    (32, 64, 128, 256)
    """
    if int(width) < 1 or int(depth) < 0:
        raise ValueError(
            f"width must be at least 1 and depth at least 0, got {width} and {depth}."
        )
    return tuple(int(width) * 2**i for i in range(int(depth)))


def halving(width, depth):
    """Widths of ``depth`` layers starting at ``width`` and halving (at least 1).

    Examples
    --------
    >>> halving(32, 2)
    (32, 16)
    """
    if int(width) < 1 or int(depth) < 0:
        raise ValueError(
            f"width must be at least 1 and depth at least 0, got {width} and {depth}."
        )
    return tuple(max(1, int(width) // 2**i) for i in range(int(depth)))
