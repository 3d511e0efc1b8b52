"""Reading image files: orientation, bit depth, centre crop and resizing."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from PIL import Image, ImageOps, UnidentifiedImageError

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")
#: The EXIF tag of the orientation in which a viewer shows an image.
_ORIENTATION = 0x0112


def _files_by_id(images_dir: Path, suffixes, key) -> tuple[dict, dict]:
    """The image files of ``images_dir`` by id (``key(path)``, None to skip),
    and the ids that name more than one file, with all their files."""
    files, clashes = {}, {}
    for path in sorted(images_dir.iterdir()):
        if path.suffix.lower() not in suffixes:
            continue
        k = key(path)
        if k is None:
            continue
        if k in files:
            clashes.setdefault(k, [files[k]]).append(path)
        else:
            files[k] = path
    return files, clashes


def _check_clashes(clashes: dict, keys, images_dir: Path) -> None:
    """Refuse ids (among ``keys``) that name several files: which one is the
    image would be chosen silently."""
    for k in keys:
        if k in clashes:
            names = " and ".join(p.name for p in clashes[k])
            raise ValueError(
                f"The id {k!r} names several images in {images_dir}: {names}; "
                "keep one of them."
            )


def _transparent(image) -> bool:
    """Whether ``image`` has a pixel that is not fully opaque."""
    has_alpha = getattr(  # Pillow >= 10.1; the same test before
        image,
        "has_transparency_data",
        image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info,
    )
    if not has_alpha:
        return False
    return image.convert("RGBA").getchannel("A").getextrema()[0] < 255


def _read_image(
    path: Path,
    crop: int | None,
    size: int | None,
    notes: dict | None = None,
    keep: int | None = None,
) -> np.ndarray:
    """``(3, H, W)`` float32 pixels in [0, 1]: 8-bit images over 255, 16-bit
    greyscale over 65535 (repeated in the three channels, as 8-bit grey).
    Resizing without ``crop`` needs a square image (others would stretch).
    An image already ``keep`` x ``keep`` pixels is read whole.
    ``notes`` collects the paths of images read in part: with transparent
    pixels (their alpha is dropped) or several frames (the first is read)."""
    scale = 255.0
    try:
        with Image.open(path) as image:
            image.load()
            if notes is not None:
                if getattr(image, "n_frames", 1) > 1:
                    notes["frames"].append(path)
                if _transparent(image):
                    notes["transparent"].append(path)
            if image.getexif().get(_ORIENTATION, 1) != 1:
                # As viewers show it: a mirroring orientation would otherwise
                # turn a clockwise spiral into an anticlockwise one.
                image = ImageOps.exif_transpose(image)
            if image.mode in _SIXTEEN_BIT:
                image, scale = image.convert("F"), 65535.0  # exact, resizable
            elif image.mode in ("I", "F"):
                raise ValueError(
                    f"Image {path} has {image.mode!r} pixels (32-bit integers or "
                    "floats), which have no fixed range to scale to [0, 1]; "
                    "convert it to 8 or 16 bits first."
                )
            elif image.mode != "RGB":
                image = image.convert("RGB")
            width, height = image.size
            if keep is not None and (width, height) == (keep, keep):
                crop = None  # already the size wanted: nothing to cut
            if crop is None and size is not None and width != height:
                raise ValueError(
                    f"Image {path} is {width}x{height} pixels: resizing it to "
                    f"size={size} without a crop would stretch it into a square "
                    "(changing the shapes in it). Pass "
                    f"crop=min(width, height) ({min(width, height)} here) to take "
                    "its centre square (when loading, size=None keeps it whole)."
                )
            if crop is not None:
                if crop > min(width, height):
                    raise ValueError(
                        f"crop={crop} is larger than image {path} "
                        f"({width}x{height} pixels)."
                    )
                left, top = (width - crop) // 2, (height - crop) // 2
                image = image.crop((left, top, left + crop, top + crop))
            if size is not None and image.size != (size, size):
                image = image.resize((size, size), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float32)
    except Image.DecompressionBombError as exc:
        raise ValueError(
            f"Cannot read image {path}: {exc} If you trust the file, raise "
            "PIL.Image.MAX_IMAGE_PIXELS; otherwise remove it or shrink it."
        ) from exc
    except (OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise ValueError(f"Cannot read image {path}: {exc}") from exc
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    return pixels.transpose(2, 0, 1) / scale


def _read_images(paths, images_dir, crop, size, n_jobs) -> np.ndarray:
    """The images ``paths`` as one float32 array ``(n, 3, side, side)``."""
    notes = {"frames": [], "transparent": []}
    first = _read_image(paths[0], crop, size, notes)
    X = np.empty((len(paths), *first.shape), dtype=np.float32)
    X[0] = first

    def read_into(i: int) -> None:
        image = _read_image(paths[i], crop, size, notes)
        if image.shape != first.shape:
            raise ValueError(
                f"Images of {images_dir} have different sizes ({image.shape[1:]} "
                f"and {first.shape[1:]}); pass crop or size."
            )
        X[i] = image

    Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(read_into)(i) for i in range(1, len(paths))
    )
    _warn_read_in_part(notes, images_dir)
    return X


def _warn_read_in_part(notes, images_dir) -> None:
    """One warning per kind of image read in part, naming a few of them."""
    told = {
        "transparent": "have transparent pixels, whose colour is read as it is "
        "(the alpha channel is dropped)",
        "frames": "hold several frames, of which only the first is read",
    }
    for kind, what in told.items():
        paths = sorted(notes[kind])
        if paths:
            names = ", ".join(p.name for p in paths[:3])
            warnings.warn(
                f"{len(paths)} image(s) of {images_dir} {what}: {names}"
                + (", ..." if len(paths) > 3 else "")
                + ".",
                UserWarning,
                stacklevel=4,
            )


_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
