"""Simulated Galaxy Zoo images and volunteer votes.

The simulation has three independent stages, each with its own random
stream so that the same ``random_state`` gives the same galaxies at any image
size: :func:`._galaxy_morphology._draw_morphology` draws the true morphology
of each galaxy, :func:`_vote` lets volunteers walk the Galaxy Zoo 2 decision
tree for it, and :func:`._galaxy_render._render` draws its image.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..galaxy_zoo import GALAXY_ZOO_COLUMNS, GALAXY_ZOO_QUESTIONS
from ._galaxy_morphology import (
    ARTIFACT,
    DISK,
    GALAXY_CLASSES,
    IRREGULAR,
    MERGER,
    NONE,
    SMOOTH,
    _draw_morphology,
)
from ._galaxy_render import _render


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _ordinal(value, centres, width):
    """Soft one-hot of ``value`` over ordered categories at ``centres``."""
    z = -0.5 * ((value[:, None] - np.asarray(centres)[None]) / width) ** 2
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def _two(p_yes):
    return np.stack([p_yes, 1 - p_yes], axis=1)


def _answer_probabilities(m: dict[str, np.ndarray]):
    """Per-question answer probabilities of a volunteer, from the truth.

    Returns the 11 arrays of probabilities (n, n_answers), in tree order, and
    the Dirichlet concentration (n, 1) with which they scatter per galaxy.
    """
    kind, odd = m["kind"], m["odd"]
    disk, artifact = kind == DISK, kind == ARTIFACT
    # how well features can be seen: resolution and signal to noise
    scale = np.where(disk, m["h"], m["re"])
    visible = _sigmoid(2.5 * (np.log(scale / m["psf"]) - 1.2))
    visible *= _sigmoid(2.0 * (np.log(m["i0"] / m["noise"]) - 2.5))
    edge_on = disk & (m["qd"] < 0.3)
    arm_seen = m["arm_amp"] * visible * (m["qd"] > 0.3) * np.clip(m["qd"] / 0.6, 0, 1)
    bar_seen = m["bar"] * visible * (m["qd"] > 0.35)
    feature = np.maximum.reduce(
        [1.6 * arm_seen, 1.2 * bar_seen, edge_on * 1.0, 0.8 * (1 - m["bt"]) * visible]
    )
    feature = np.where(odd == IRREGULAR, 1.0, feature)
    p_feat = np.where(disk, _sigmoid(6 * (feature - 0.4)), 0.06)
    p_star = np.where(artifact, 0.85, 0.01)
    p1 = np.stack([(1 - p_feat) * (1 - p_star), p_feat * (1 - p_star), p_star], 1)
    apparent_q = np.where(disk, m["qd"], m["q"])
    p2 = _two(_sigmoid((0.3 - apparent_q) / 0.05))
    p3 = _two(np.clip(0.05 + 0.9 * _sigmoid(8 * (bar_seen - 0.3)), 0, 1))
    p4 = _two(0.05 + 0.9 * _sigmoid(10 * (arm_seen - 0.22)))
    bulge = np.where(disk, m["bt"], 0.7)
    p5 = _ordinal(bulge, [0.0, 0.1, 0.28, 0.55], 0.09)
    odd_seen = np.where(odd == NONE, 0.06 + 0.15 * (m["star_flux"].max(1) > 0.01), 0)
    odd_seen = np.where(odd != NONE, 0.35 + 0.6 * m["odd_amp"], odd_seen)
    p6 = _two(odd_seen)
    p7 = _ordinal(apparent_q, [0.95, 0.65, 0.3], 0.1)
    confusion = np.eye(7) * 0.75 + 0.25 / 7
    confusion[[2, 3, 5], [3, 5, 2]] += 0.1  # disturbed / irregular / merger
    none_row = np.array([0.06, 0.04, 0.15, 0.1, 0.45, 0.12, 0.08])
    p8 = np.where((odd == NONE)[:, None], none_row, confusion[np.maximum(odd, 1) - 1])
    bulge_shape = np.where(m["bt"] < 0.05, 2, np.where(m["boxy"], 1, 0))
    p9 = np.eye(3)[bulge_shape] * 0.7 + 0.1
    p10 = _ordinal(m["pitch"], [10.0, 19.0, 31.0], 5.0)
    counts = _ordinal(np.minimum(m["arms"], 5).astype(float), [1, 2, 3, 4, 5], 0.45)
    unsure = np.clip(0.6 - arm_seen, 0.04, 0.6)[:, None]
    p11 = np.hstack([counts * (1 - unsure), unsure])
    probs = [p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11]
    # volunteers disagree more about galaxies that are hard to see
    concentration = (8 + 40 * np.where(disk, visible, 1.0))[:, None]
    return probs, concentration


def _vote(m: dict[str, np.ndarray], n_volunteers: int, rng) -> np.ndarray:
    """Vote fractions (n, 37) of ``n_volunteers`` walking the decision tree."""
    probs, concentration = _answer_probabilities(m)
    n = len(m["kind"])
    counts = np.zeros((n, len(GALAXY_ZOO_COLUMNS)), dtype=np.int64)
    for question, p in zip(GALAXY_ZOO_QUESTIONS, probs):
        # each galaxy's own answer probabilities scatter around the truth
        p = rng.standard_gamma(concentration * (0.98 * p + 0.02 / p.shape[1]))
        p = np.maximum(p, 1e-12)
        p /= p.sum(axis=1, keepdims=True)
        if question.parent is None:
            reached = np.full(n, n_volunteers)
        else:
            reached = counts[:, question.parent]
        counts[:, question.start : question.stop] = rng.multinomial(reached, p)
    return counts / n_volunteers


def _classes(m: dict[str, np.ndarray]) -> np.ndarray:
    """Galaxy Zoo 1 style label of each galaxy, from its true morphology."""
    kind = m["kind"]
    # the winding direction is only clear for strong arms on a tilted disk
    spiral = (kind == DISK) & (m["arm_amp"] >= 0.35) & (m["qd"] >= 0.45)
    label = np.full(len(kind), 5)
    label[kind == SMOOTH] = 0
    label[spiral] = np.where(m["handedness"][spiral] > 0, 1, 2)
    label[(kind == DISK) & (m["qd"] < 0.3)] = 3
    label[(m["odd"] == MERGER) & (kind != ARTIFACT)] = 4
    label[kind == ARTIFACT] = 5
    return np.asarray(GALAXY_CLASSES, dtype=object)[label]


def _seed_sequence(random_state) -> np.random.SeedSequence:
    """A SeedSequence from None, an int, a RandomState or a Generator."""
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if random_state is None or isinstance(random_state, (int, np.integer)):
        return np.random.SeedSequence(
            None if random_state is None else int(random_state)
        )
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(2**63)))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(int(random_state.randint(2**31 - 1)))
    raise ValueError(
        "random_state must be None, an int, a numpy RandomState or Generator; "
        f"got {random_state!r}."
    )


def _simulate(n: int, random_state, n_volunteers: int):
    """Morphology, votes, and seed sequences for the images and the ids."""
    morph_seed, vote_seed, image_seed, id_seed = _seed_sequence(random_state).spawn(4)
    morph = _draw_morphology(n, np.random.default_rng(morph_seed))
    votes = _vote(morph, n_volunteers, np.random.default_rng(vote_seed))
    y = pd.DataFrame(votes, columns=list(GALAXY_ZOO_COLUMNS))
    return morph, y, image_seed, id_seed


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def make_galaxy_zoo(
    n_samples: int = 1000,
    *,
    size: int = 69,
    n_volunteers: int = 40,
    return_classes: bool = False,
    random_state=None,
):
    """Simulate Galaxy Zoo images and the 37 vote fractions of the challenge.

    Each galaxy gets a true morphology: a smooth Sersic-profile elliptical
    (37 %), a disk galaxy (exponential disk seen at a random inclination and
    position angle, a bulge, and for some a bar and 1 to 6 spiral arms of
    tight, medium or loose winding and either handedness), or a star or
    artifact; some have an odd feature (ring, lens arc, disturbance,
    irregular clumps, merging companion, dust lane, or a blue knot as
    "other"). Bulges and ellipticals are redder, disks and arms bluer;
    foreground stars, faint background galaxies, a point spread function and
    sky noise complete the image, which is stretched as the SDSS colour
    composites of Galaxy Zoo are (an asinh stretch that keeps colours [1]_).
    Sky level and noise, colours, sizes in the stamp, neighbouring sources
    and the brightness of the centres are set to those of SDSS Galaxy Zoo 1
    images cropped and resized as by :func:`load_image_folder`'s defaults
    (``benchmarks/galaxy_realism.py`` compares them).

    ``n_volunteers`` simulated volunteers then walk the Galaxy Zoo 2
    decision tree for each galaxy. Their answers are drawn from probabilities
    that follow the true morphology and how well it can be seen (small or
    faint disks look smooth more often), scattered per galaxy, so the vote
    fractions obey the tree exactly: each question's answers sum to the
    fraction of volunteers who reached it.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of galaxies.
    size : int, default=69
        Images are ``size x size`` pixels showing the field of the central
        207x207 pixels of a Kaggle image (``load_galaxy_zoo``'s defaults).
    n_volunteers : int, default=40
        Volunteers per galaxy; vote fractions are multiples of
        ``1 / n_volunteers``.
    return_classes : bool, default=False
        Also return a Galaxy Zoo 1 style label per galaxy, see
        :func:`make_galaxy_classes`.
    random_state : int, RandomState instance or None, default=None
        Seed. The same seed gives the same galaxies and votes at any ``size``.

    Returns
    -------
    X : ndarray of shape (n_samples, 3, size, size), dtype float32
        RGB images in [0, 1], channels first.
    y : DataFrame of shape (n_samples, 37)
        Vote fractions, columns ``Class1.1`` ... ``Class11.6``.
    classes : ndarray of str, shape (n_samples,)
        Only when ``return_classes=True``.

    See Also
    --------
    make_galaxy_classes : Images with Galaxy Zoo 1 style labels.
    write_galaxy_zoo_folder : The same galaxies in the Kaggle folder layout.
    skestimators.metrics.galaxy_zoo_root_mean_squared_error : The challenge
        metric.

    References
    ----------
    .. [1] R. Lupton et al., "Preparing red-green-blue images from CCD data",
       PASP 116, 133-137, 2004.

    Examples
    --------
    >>> from skestimators.datasets import make_galaxy_zoo
    >>> X, y = make_galaxy_zoo(5, size=32, random_state=0)
    >>> X.shape, X.dtype, y.shape
    ((5, 3, 32, 32), dtype('float32'), (5, 37))
    >>> bool((y.filter(like="Class1.").sum(axis=1) == 1).all())
    True
    """
    n_samples = _check_int(n_samples, "n_samples", 1)
    size = _check_int(size, "size", 4)
    n_volunteers = _check_int(n_volunteers, "n_volunteers", 1)
    morph, y, image_seed, _ = _simulate(n_samples, random_state, n_volunteers)
    X = _render(morph, size, 1.0, np.random.default_rng(image_seed))
    if return_classes:
        return X, y, _classes(morph)
    return X, y


def make_galaxy_classes(n_samples: int = 1000, *, size: int = 69, random_state=None):
    """Simulate galaxy images with Galaxy Zoo 1 style class labels.

    The labels come from the true morphology of the galaxies of
    :func:`make_galaxy_zoo`: ``"elliptical"`` (smooth galaxies),
    ``"clockwise_spiral"`` and ``"anticlockwise_spiral"`` (disks with strong
    spiral arms, inclined by less than about 60 degrees), ``"edge_on"``
    (disks seen edge-on), ``"merger"`` (a merging companion) and
    ``"unknown"`` (stars, artifacts, and disks whose winding cannot be told:
    faint or no arms, too inclined, or irregular clumps).

    The names and codes differ from those of the Galaxy Zoo 1 classes of
    SDSS images (read with :func:`load_image_folder`: ``dont_know`` is code
    4 and ``merger`` code 5 there; ``merger`` is 4 and ``unknown`` 5 here),
    and so does the mix: about 32 % ellipticals and 25 % unknown
    here, against 70 % ellipticals and under 1 % ``dont_know`` in the
    catalogue. Map the names before comparing a model trained here with
    real labels.

    A clockwise ("Z-wise") spiral's arms turn clockwise when followed from
    their tips inward, as the image is displayed with row 0 at the top
    (matplotlib's default). A mirror flip of the image along its width
    (``np.flip(X, axis=-1)``), or along its height, turns a clockwise spiral
    into an anticlockwise one; rotations do not change the handedness.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of galaxies.
    size : int, default=69
        Image size in pixels.
    random_state : int, RandomState instance or None, default=None
        Seed; the same as ``make_galaxy_zoo``'s for the same galaxies.

    Returns
    -------
    X : ndarray of shape (n_samples, 3, size, size), dtype float32
        RGB images in [0, 1], channels first.
    classes : ndarray of str, shape (n_samples,)
        One of :data:`GALAXY_CLASSES`.

    See Also
    --------
    make_galaxy_zoo : The same galaxies with the 37 vote fractions.
    skestimators.nn.dihedral_views : Tells which views are mirrored.

    Examples
    --------
    >>> from skestimators.datasets import GALAXY_CLASSES, make_galaxy_classes
    >>> X, classes = make_galaxy_classes(20, size=32, random_state=0)
    >>> X.shape, set(classes) <= set(GALAXY_CLASSES)
    ((20, 3, 32, 32), True)
    """
    X, _, classes = make_galaxy_zoo(
        n_samples, size=size, return_classes=True, random_state=random_state
    )
    return X, classes
