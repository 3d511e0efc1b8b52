"""Picklable, label-aware augmentation of training batches of images.

:class:`ImageBatchAugment` is the callable an estimator hands to the training
engine: ``(X, (y, w), generator) -> (X, (y, w))``, applied to every training
batch on the device. It draws a random dihedral transform (and optionally a
small shift and zoom) per image and, since a mirror flip reverses the
handedness of spiral arms, can give every mirrored image the label of its
mirror-image class.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ._augment import random_affine, random_dihedral

__all__ = ["ImageBatchAugment"]


class ImageBatchAugment:
    """Random dihedral transforms and affine jitter for a batch, with label swaps.

    Parameters
    ----------
    mirror : bool, default=True
        Draw any of the eight dihedral transforms (rotations by multiples of
        90 degrees, with or without a mirror flip); False draws rotations
        only. Non-square images get the transforms that keep their shape.
    max_shift : float, default=0.0
        Largest random shift, as a fraction of the image size; see
        :func:`random_affine`.
    zoom : tuple of float, default=(1.0, 1.0)
        Range of the random magnification; ``(1, 1)`` with ``max_shift=0``
        skips the (interpolating) affine resampling altogether.
    swap : sequence of int or None, default=None
        A permutation applied to the labels of mirrored images: ``swap[c]``
        is the label a mirrored image of label ``c`` gets. With
        ``target="class"`` the targets are class codes (a 1-D integer tensor,
        or an ``(n, 1)`` float tensor of 0/1 for binary targets); with
        ``target="columns"`` they are a matrix whose columns are permuted
        (multilabel targets). None leaves every label unchanged.
    target : {"class", "columns"}, default="class"
        How ``swap`` acts on the targets.

    Examples
    --------
    >>> import torch
    >>> from skestimators.nn._image_augment import ImageBatchAugment
    >>> augment = ImageBatchAugment(swap=(0, 2, 1))  # classes 1 and 2 are mirror images
    >>> X, y = torch.rand(6, 3, 8, 8), torch.tensor([0, 1, 1, 2, 2, 0])
    >>> X_aug, (y_aug, w) = augment(X, (y, None), torch.Generator().manual_seed(0))
    >>> X_aug.shape, y_aug.dtype, w is None
    (torch.Size([6, 3, 8, 8]), torch.int64, True)
    """

    def __init__(
        self,
        *,
        mirror: bool = True,
        max_shift: float = 0.0,
        zoom: tuple[float, float] = (1.0, 1.0),
        swap: Sequence[int] | None = None,
        target: str = "class",
    ):
        if target not in ("class", "columns"):
            raise ValueError(f"target must be 'class' or 'columns', got {target!r}.")
        self.mirror = bool(mirror)
        self.max_shift = float(max_shift)
        self.zoom = (float(zoom[0]), float(zoom[1]))
        self.swap = None if swap is None else tuple(int(s) for s in swap)
        if self.swap is not None and sorted(self.swap) != list(range(len(self.swap))):
            raise ValueError(f"swap must be a permutation of 0..n-1, got {swap!r}.")
        self.target = target

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(mirror={self.mirror}, max_shift={self.max_shift}, "
            f"zoom={self.zoom}, swap={self.swap}, target={self.target!r})"
        )

    def __call__(self, X, yw, generator=None):
        y, w = yw
        X, mirrored = random_dihedral(X, mirror=self.mirror, generator=generator)
        if self.max_shift > 0 or self.zoom != (1.0, 1.0):
            X = random_affine(
                X, max_shift=self.max_shift, zoom=self.zoom, generator=generator
            )
        if self.swap is not None and y is not None:
            y = self.swap_labels(y, mirrored)
        return X, (y, w)

    def swap_labels(self, y: torch.Tensor, mirrored: torch.Tensor) -> torch.Tensor:
        """Labels with those of the ``mirrored`` samples permuted by ``swap``.

        Returns a new tensor; ``y`` is never modified in place.
        """
        perm = torch.as_tensor(self.swap).to(y.device, non_blocking=True)
        mirrored = mirrored.to(y.device, non_blocking=True)
        if self.target == "columns":
            # Column c's values move to column swap[c].
            return torch.where(mirrored[:, None], y[:, torch.argsort(perm)], y)
        if y.is_floating_point():  # binary targets: (n, 1) floats 0/1
            swapped = perm[y.long()].to(y.dtype)
        else:
            swapped = perm[y]
        mask = mirrored.reshape(-1, *([1] * (y.ndim - 1)))
        return torch.where(mask, swapped, y)
