"""Batch image augmentation in plain torch: dihedral transforms and affine jitter.

Every function takes a batch of images ``(n, channels, height, width)`` (the
transforms act on the last two dimensions) and returns a new tensor. The
eight dihedral transforms are numbered so that the first views suit test-time
augmentation: ``k = 0`` is the identity, even ``k`` are rotations and odd
``k`` the same rotations followed by a mirror flip (along the width axis).
Views 0 to 3 keep the image shape, so they also apply to non-square images.

A mirror flip reverses the handedness of spiral arms (a clockwise spiral
becomes anticlockwise) while rotations do not: the functions below report
which samples or views were mirrored so that chirality labels can be swapped.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["dihedral_transform", "dihedral_views", "random_affine", "random_dihedral"]

# (quarter turns counterclockwise, then mirror along the width axis)
_DIHEDRAL = ((0, False), (0, True), (2, False), (2, True),
             (1, False), (1, True), (3, False), (3, True))  # fmt: skip


def _check_images(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise ValueError(
            f"Expected a tensor of images (n, channels, height, width), got {shape}."
        )


def dihedral_transform(x: torch.Tensor, k: int) -> tuple[torch.Tensor, bool]:
    """Apply the ``k``-th of the eight dihedral transforms to every image.

    Parameters
    ----------
    x : torch.Tensor of shape (n, channels, height, width)
        Images.
    k : int
        0 to 7: ``k // 2`` selects a rotation by 0, 180, 90 or 270 degrees
        (counterclockwise as displayed with row 0 at the top) and odd ``k``
        add a mirror flip along the width axis. Views 4 to 7 swap height and
        width and need square images.

    Returns
    -------
    view : torch.Tensor
        The transformed images.
    mirrored : bool
        Whether the transform includes a mirror flip (``k`` odd).

    Examples
    --------
    >>> import torch
    >>> from skestimators.nn import dihedral_transform
    >>> x = torch.arange(4.0).reshape(1, 1, 2, 2)
    >>> view, mirrored = dihedral_transform(x, 1)
    >>> view[0, 0].tolist(), mirrored
    ([[1.0, 0.0], [3.0, 2.0]], True)
    """
    _check_images(x)
    if not 0 <= int(k) < 8:
        raise ValueError(f"k must be an integer in [0, 8), got {k!r}.")
    turns, mirror = _DIHEDRAL[int(k)]
    if turns % 2 and x.shape[-1] != x.shape[-2]:
        raise ValueError(
            f"Dihedral view {k} rotates by 90 degrees and needs square images; "
            f"got {x.shape[-2]}x{x.shape[-1]}. Use views 0 to 3."
        )
    out = torch.rot90(x, turns, dims=(-2, -1)) if turns else x
    if mirror:
        out = torch.flip(out, dims=(-1,))
    return (out if (turns or mirror) else x.clone()), mirror


def dihedral_views(
    x: torch.Tensor, n_views: int = 8
) -> list[tuple[torch.Tensor, bool]]:
    """The first ``n_views`` dihedral views of a batch, for test-time augmentation.

    Parameters
    ----------
    x : torch.Tensor of shape (n, channels, height, width)
        Images.
    n_views : int, default=8
        1 to 8 views; the first is the identity, the second its mirror image.
        More than 4 views need square images.

    Returns
    -------
    views : list of (torch.Tensor, bool)
        Each view with a flag telling whether it includes a mirror flip.

    See Also
    --------
    dihedral_transform : One view.

    Examples
    --------
    >>> import torch
    >>> from skestimators.nn import dihedral_views
    >>> views = dihedral_views(torch.rand(2, 3, 8, 8), n_views=4)
    >>> [mirrored for _, mirrored in views]
    [False, True, False, True]
    """
    _check_images(x)
    if not 1 <= int(n_views) <= 8:
        raise ValueError(f"n_views must be between 1 and 8, got {n_views!r}.")
    return [dihedral_transform(x, k) for k in range(int(n_views))]


def random_dihedral(
    x: torch.Tensor,
    *,
    mirror: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply an independent random dihedral transform to each image.

    Parameters
    ----------
    x : torch.Tensor of shape (n, channels, height, width)
        Images. Square images get any of the eight transforms; others get
        one of the four that keep their shape.
    mirror : bool, default=True
        Whether mirror flips are drawn too; False draws rotations only (four
        for square images, two for others), which keep the chirality.
    generator : torch.Generator, default=None
        Source of randomness (on the CPU), for reproducible draws.

    Returns
    -------
    out : torch.Tensor
        The transformed images.
    mirrored : torch.Tensor of bool, shape (n,)
        Which images were mirrored (their chirality is reversed).

    Examples
    --------
    >>> import torch
    >>> from skestimators.nn import random_dihedral
    >>> g = torch.Generator().manual_seed(0)
    >>> out, mirrored = random_dihedral(torch.rand(5, 3, 8, 8), generator=g)
    >>> out.shape, mirrored.shape, mirrored.dtype
    (torch.Size([5, 3, 8, 8]), torch.Size([5]), torch.bool)
    """
    _check_images(x)
    n_kinds = 8 if x.shape[-1] == x.shape[-2] else 4
    if mirror:
        ks = torch.randint(n_kinds, (x.shape[0],), generator=generator)
    else:  # even k: rotations without a flip
        ks = 2 * torch.randint(n_kinds // 2, (x.shape[0],), generator=generator)
    # The images are grouped by transform with indices and group sizes known
    # on the host: on a GPU, no step waits for it (a group size read from
    # the device would wait, once per transform and batch).
    order = torch.argsort(ks, stable=True)
    sizes = torch.bincount(ks, minlength=n_kinds).tolist()
    mirrored = ks % 2 == 1
    if x.device.type != "cpu":
        order = order.to(x.device, non_blocking=True)
        mirrored = mirrored.to(x.device, non_blocking=True)
    out = torch.empty_like(x)
    for k, idx in enumerate(torch.split(order, sizes)):
        if len(idx):
            out[idx] = dihedral_transform(x[idx], k)[0]
    return out, mirrored


def random_affine(
    x: torch.Tensor,
    *,
    max_shift: float = 0.05,
    zoom: tuple[float, float] = (0.9, 1.1),
    max_rotation: float = 0.0,
    padding_mode: str = "border",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Randomly shift, zoom and rotate each image (bilinear resampling).

    Parameters
    ----------
    x : torch.Tensor of shape (n, channels, height, width)
        Images.
    max_shift : float, default=0.05
        Largest shift, as a fraction of the image size, drawn uniformly and
        independently along each axis.
    zoom : tuple of float, default=(0.9, 1.1)
        Range of the magnification, drawn log-uniformly (``> 1`` enlarges).
    max_rotation : float, default=0.0
        Largest rotation in degrees, drawn uniformly in both directions.
        Rotations keep the chirality of spiral arms.
    padding_mode : {"border", "zeros", "reflection"}, default="border"
        How pixels from outside the image are filled, see
        :func:`torch.nn.functional.grid_sample`.
    generator : torch.Generator, default=None
        Source of randomness (on the CPU), for reproducible draws.

    Returns
    -------
    out : torch.Tensor
        The transformed images, same shape as ``x``.

    Examples
    --------
    >>> import torch
    >>> from skestimators.nn import random_affine
    >>> x = torch.rand(4, 3, 16, 16)
    >>> random_affine(x, max_shift=0.1, max_rotation=180).shape
    torch.Size([4, 3, 16, 16])
    >>> bool(torch.allclose(random_affine(x, max_shift=0, zoom=(1, 1)), x, atol=1e-5))
    True
    """
    _check_images(x)
    low, high = (float(z) for z in zoom)
    if not 0 < low <= high:
        raise ValueError(
            f"zoom must be a range (low, high) with 0 < low <= high: {zoom}"
        )
    if max_shift < 0 or max_rotation < 0:
        raise ValueError("max_shift and max_rotation must be non-negative.")
    n = x.shape[0]

    def uniform(a: float, b: float) -> torch.Tensor:
        return a + (b - a) * torch.rand(n, generator=generator, dtype=torch.float64)

    scale = torch.exp(uniform(math.log(low), math.log(high)))
    angle = torch.deg2rad(uniform(-max_rotation, max_rotation))
    shift = 2 * torch.stack([uniform(-max_shift, max_shift) for _ in range(2)], 1)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # affine_grid's coordinates run from -1 to 1 along both axes: a rotation
    # in pixels scales its off-diagonal terms by the aspect ratio.
    height, width = x.shape[-2:]
    theta = torch.stack(
        [
            torch.stack([cos, -sin * height / width, shift[:, 0]], 1),
            torch.stack([sin * width / height, cos, shift[:, 1]], 1),
        ],
        1,
    ).to(
        device=x.device,
        dtype=x.dtype if x.is_floating_point() else torch.float32,
        non_blocking=True,  # a GPU need not finish its work first
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(
        x.to(theta.dtype), grid, mode="bilinear", padding_mode=padding_mode,
        align_corners=False,
    )  # fmt: skip
    return out.to(x.dtype)
