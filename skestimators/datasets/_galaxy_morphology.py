"""True morphology of simulated galaxies (the first stage of the simulator).

Lengths are in units of half the field of view of a ``make_galaxy_zoo`` image
(the central 207x207 pixels of a Kaggle image); ``y`` points up as an image is
displayed, row 0 at the top; angles are counterclockwise as displayed.
"""

from __future__ import annotations

import numpy as np

SMOOTH, DISK, ARTIFACT = 0, 1, 2
#: Odd features, in the order of the answers to Q8 (0 is "nothing odd").
NONE, RING, LENS, DISTURBED, IRREGULAR, OTHER, MERGER, DUST = range(8)
N_STARS, N_CLUMPS, N_FIELD = 3, 6, 6

#: Galaxy Zoo 1 style labels of ``make_galaxy_classes``.
GALAXY_CLASSES = (
    "elliptical",
    "clockwise_spiral",
    "anticlockwise_spiral",
    "edge_on",
    "merger",
    "unknown",
)


def _log_uniform(rng, low, high, n):
    return np.exp(rng.uniform(np.log(low), np.log(high), n))


def _draw_morphology(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """True morphology of ``n`` galaxies, as a dict of arrays of length ``n``."""
    m: dict[str, np.ndarray] = {}
    kind = rng.choice(3, n, p=[0.37, 0.605, 0.025])
    m["kind"] = kind
    m["artifact"] = rng.choice(3, n, p=[0.6, 0.2, 0.2])  # star, trail, faint smudge
    m["x0"], m["y0"] = rng.normal(0, 0.015, (2, n))
    m["pa"] = rng.uniform(0, np.pi, n)
    m["tint"] = rng.normal(1, 0.06, (n, 3))
    # smooth (elliptical) galaxies: one Sersic profile
    m["q"] = np.clip(1 - rng.beta(1.3, 2.2, n) * 0.85, 0.15, 1.0)
    m["sersic"] = rng.uniform(2.0, 4.0, n)
    m["re"] = _log_uniform(rng, 0.14, 0.35, n)
    m["ie"] = _log_uniform(rng, 0.2, 0.7, n)
    # disks: exponential disk + Sersic bulge
    cos_i = rng.uniform(0, 1, n)
    m["qd"] = np.sqrt(cos_i**2 * (1 - 0.12**2) + 0.12**2)
    m["h"] = _log_uniform(rng, 0.1, 0.2, n)
    m["i0"] = _log_uniform(rng, 0.6, 2.0, n)
    m["bt"] = np.clip(rng.beta(1.2, 3.0, n) * 0.8, 0, 0.8)
    m["re_b"] = _log_uniform(rng, 0.025, 0.07, n)
    m["n_b"] = rng.uniform(1.5, 4.0, n)
    m["q_b"] = rng.uniform(0.75, 1.0, n)
    m["boxy"] = rng.random(n) < 0.25
    is_disk = kind == DISK
    m["bar"] = np.where(is_disk & (rng.random(n) < 0.35), rng.uniform(0.3, 1.0, n), 0)
    m["bar_len"] = rng.uniform(1.0, 2.0, n)  # in disk scale lengths
    m["bar_q"] = rng.uniform(0.2, 0.35, n)
    m["bar_angle"] = rng.uniform(0, np.pi, n)
    has_arms = is_disk & (rng.random(n) < 0.78)
    m["arm_amp"] = np.where(has_arms, rng.uniform(0.25, 0.9, n), 0)
    m["arms"] = rng.choice([1, 2, 3, 4, 5, 6], n, p=[0.06, 0.5, 0.2, 0.12, 0.07, 0.05])
    m["winding"] = rng.choice(3, n, p=[0.3, 0.4, 0.3])  # tight, medium, loose
    lo, hi = np.array([7, 14, 24]), np.array([14, 24, 38])
    m["pitch"] = rng.uniform(lo[m["winding"]], hi[m["winding"]])  # degrees
    m["handedness"] = rng.choice([-1, 1], n)  # +1: clockwise (Z-wise)
    m["arm_phase"] = rng.uniform(0, 2 * np.pi, n)
    # odd features, with probabilities depending on the kind of galaxy
    edge_on = is_disk & (m["qd"] < 0.3)
    p_odd = np.array(
        [
            [0.76, 0.0, 0.03, 0.05, 0.0, 0.05, 0.11, 0.0],  # smooth
            [0.66, 0.07, 0.02, 0.05, 0.06, 0.03, 0.08, 0.03],  # disk
            [0.95, 0.0, 0.0, 0.0, 0.0, 0.05, 0.0, 0.0],  # artifact
        ]
    )
    draws = np.stack([rng.choice(8, n, p=p_odd[k]) for k in range(3)])
    odd = draws[kind, np.arange(n)]
    # dust lanes only across edge-on disks; rings and irregulars never edge-on
    odd[(odd == DUST) & ~edge_on] = NONE
    odd[edge_on & (odd == NONE) & (rng.random(n) < 0.2)] = DUST
    odd[edge_on & np.isin(odd, [RING, IRREGULAR])] = NONE
    m["odd"] = odd
    m["odd_amp"] = rng.uniform(0.4, 1.0, n)
    m["odd_angle"] = rng.uniform(0, 2 * np.pi, n)
    m["odd_dist"] = rng.uniform(0.3, 0.6, n)
    m["odd_size"] = _log_uniform(rng, 0.04, 0.12, n)
    m["clump_xy"] = rng.normal(0, 1, (n, N_CLUMPS, 2))
    m["clump_amp"] = rng.uniform(0.3, 1.0, (n, N_CLUMPS)) * (
        rng.random((n, N_CLUMPS)) < 0.7
    )
    # irregulars have weak disks and no arms, bars or bulges
    irregular = odd == IRREGULAR
    m["arm_amp"][irregular] = 0
    m["bar"][irregular] = 0
    m["bt"][irregular] = 0.02
    # foreground stars anywhere in the field; observing conditions
    m["star_xy"] = rng.uniform(-0.95, 0.95, (n, N_STARS, 2))
    m["star_flux"] = (rng.random((n, N_STARS)) < 0.2) * _log_uniform(
        rng, 0.002, 0.02, (n, N_STARS)
    )
    m["psf"] = rng.uniform(0.02, 0.045, n)
    m["noise"] = _log_uniform(rng, 0.015, 0.04, n)
    # faint background galaxies and stars, drawn last so that the galaxies
    # and their votes above do not depend on them
    m["field_xy"] = rng.uniform(-1.0, 1.0, (n, N_FIELD, 2))
    m["field_flux"] = (rng.random((n, N_FIELD)) < 0.4) * _log_uniform(
        rng, 0.0002, 0.004, (n, N_FIELD)
    )
    m["field_size"] = _log_uniform(rng, 0.004, 0.03, (n, N_FIELD))
    m["field_red"] = rng.uniform(0, 1, (n, N_FIELD))
    return m
