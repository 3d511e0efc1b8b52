"""The Galaxy Zoo 2 decision tree, as used by the Kaggle Galaxy Challenge (2014).

This module is the single definition of the 37 answer columns and of the
questions that group them, and of the projection of predictions onto the
tree. It needs only NumPy and pandas, so that :mod:`skestimators.nn` (whose
:class:`~skestimators.nn.GalaxyZooConstraint` builds the tree into a network's
output layer), :mod:`skestimators.metrics` and :mod:`skestimators.datasets`
can all import it without importing one another.

Each question's answers are vote fractions weighted by the fraction of
volunteers who reached the question: the answers of a question sum to the
value of the answer that leads to it (its *parent*), or to 1 for Q1 and
Q6. Q1 is asked of everybody; in Galaxy Zoo 2 Q6 is not asked after "star
or artifact", but the Challenge's vote fractions of Q6 sum to 1 all the
same (a quirk of how its data were generated, which the winning solution
followed), and so do this tree's.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = [
    "GALAXY_ZOO_ANSWERS",
    "GALAXY_ZOO_COLUMNS",
    "GALAXY_ZOO_QUESTIONS",
    "GalaxyZooQuestion",
    "project_galaxy_zoo",
]


class GalaxyZooQuestion(NamedTuple):
    """One question of the decision tree.

    Attributes
    ----------
    name : str
        ``"Q1"`` to ``"Q11"``.
    text : str
        The question as shown to volunteers.
    start, stop : int
        The question's answers are the columns ``start:stop`` of the 37.
    parent : int or None
        Column index of the answer that leads to this question, or ``None``
        for Q1 and Q6 (whose answers sum to 1).

    See Also
    --------
    project_galaxy_zoo : Make predictions obey the tree.

    Examples
    --------
    >>> from skestimators.galaxy_zoo import GALAXY_ZOO_COLUMNS, GALAXY_ZOO_QUESTIONS
    >>> len(GALAXY_ZOO_COLUMNS), len(GALAXY_ZOO_QUESTIONS)
    (37, 11)
    >>> q = GALAXY_ZOO_QUESTIONS[9]
    >>> q.name, q.columns, GALAXY_ZOO_COLUMNS[q.parent]
    ('Q10', ('Class10.1', 'Class10.2', 'Class10.3'), 'Class4.1')
    """

    name: str
    text: str
    start: int
    stop: int
    parent: int | None

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the question's answer columns."""
        return GALAXY_ZOO_COLUMNS[self.start : self.stop]


_ANSWERS = {
    1: ("smooth", "features or disk", "star or artifact"),
    2: ("edge-on: yes", "edge-on: no"),
    3: ("bar: yes", "bar: no"),
    4: ("spiral arms: yes", "spiral arms: no"),
    5: ("bulge: none", "bulge: just noticeable", "bulge: obvious", "bulge: dominant"),
    6: ("anything odd: yes", "anything odd: no"),
    7: ("completely round", "in between", "cigar-shaped"),
    8: (
        "odd: ring",
        "odd: lens or arc",
        "odd: disturbed",
        "odd: irregular",
        "odd: other",
        "odd: merger",
        "odd: dust lane",
    ),
    9: ("edge-on bulge: rounded", "edge-on bulge: boxy", "edge-on bulge: none"),
    10: ("arms: tight", "arms: medium", "arms: loose"),
    11: ("arms: 1", "arms: 2", "arms: 3", "arms: 4", "arms: more than 4", "arms: ?"),
}
_TEXTS = {
    1: "Is the galaxy simply smooth and rounded, with no sign of a disk?",
    2: "Could this be a disk viewed edge-on?",
    3: "Is there a sign of a bar feature through the centre of the galaxy?",
    4: "Is there any sign of a spiral arm pattern?",
    5: "How prominent is the central bulge, compared with the rest of the galaxy?",
    6: "Is there anything odd?",
    7: "How rounded is it?",
    8: "Is the odd feature a ring, or is the galaxy disturbed or irregular?",
    9: "Does the galaxy have a bulge at its centre? If so, what shape?",
    10: "How tightly wound do the spiral arms appear?",
    11: "How many spiral arms are there?",
}
# question -> answer (question, answer number) that leads to it
_PARENTS = {
    2: (1, 2),
    3: (2, 2),
    4: (2, 2),
    5: (2, 2),
    7: (1, 1),
    8: (6, 1),
    9: (2, 1),
    10: (4, 1),
    11: (4, 1),
}

#: The 37 target columns, in the Kaggle order (``Class1.1`` ... ``Class11.6``).
GALAXY_ZOO_COLUMNS: tuple[str, ...] = tuple(
    f"Class{q}.{a}" for q in range(1, 12) for a in range(1, len(_ANSWERS[q]) + 1)
)

#: Human-readable meaning of each of the 37 columns.
GALAXY_ZOO_ANSWERS: dict[str, str] = {
    f"Class{q}.{a}": text
    for q in range(1, 12)
    for a, text in enumerate(_ANSWERS[q], start=1)
}


def _build_questions() -> tuple[GalaxyZooQuestion, ...]:
    questions = []
    start = 0
    for q in range(1, 12):
        stop = start + len(_ANSWERS[q])
        parent = None
        if q in _PARENTS:
            pq, pa = _PARENTS[q]
            parent = GALAXY_ZOO_COLUMNS.index(f"Class{pq}.{pa}")
        questions.append(GalaxyZooQuestion(f"Q{q}", _TEXTS[q], start, stop, parent))
        start = stop
    return tuple(questions)


#: The 11 questions in tree order: every parent answer belongs to an earlier
#: question, so processing them in this order sees each parent before its
#: children.
GALAXY_ZOO_QUESTIONS: tuple[GalaxyZooQuestion, ...] = _build_questions()

_N = len(GALAXY_ZOO_COLUMNS)


def _as_targets(y, name: str) -> np.ndarray:
    """``y`` as a float64 array of shape (n, 37), in the canonical column order."""
    if isinstance(y, pd.DataFrame):
        missing = [c for c in GALAXY_ZOO_COLUMNS if c not in y.columns]
        extra = [c for c in y.columns if c not in GALAXY_ZOO_COLUMNS]
        if missing or extra:
            raise ValueError(
                f"{name} must have the 37 Galaxy Zoo columns (Class1.1 ... "
                f"Class11.6); missing {missing[:5]}, unexpected {extra[:5]}."
            )
        y = y.loc[:, list(GALAXY_ZOO_COLUMNS)]
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if arr.ndim != 2 or arr.shape[1] != _N or arr.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape (n_samples, {_N}) with n_samples >= 1, "
            f"got {arr.shape}."
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return arr


def project_galaxy_zoo(y_pred):
    """Project predictions onto the constraints of the Galaxy Zoo tree.

    Negative values are clipped to 0; then, in tree order, each question's
    answers are rescaled to sum to the (already projected) value of the
    answer that leads to it, or to 1 for Q1 and Q6. A question whose answers
    are all 0 gets equal shares. Predictions that already obey the tree are
    returned unchanged (up to rounding), so the projection is idempotent.
    It is the normalisation of the Galaxy Zoo 2 decision tree [2]_ that the
    winning Galaxy Challenge solution built into its output layer [1]_,
    applied after the fact to the predictions of any model.

    Parameters
    ----------
    y_pred : array-like or DataFrame of shape (n_samples, 37)
        Predicted vote fractions; DataFrames are matched by column name.

    Returns
    -------
    projected : ndarray or DataFrame of shape (n_samples, 37)
        A float64 array in the canonical column order, or a DataFrame with
        the columns and index of ``y_pred``.

    See Also
    --------
    skestimators.nn.GalaxyZooConstraint : The same constraint as a network
        output layer.

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
    >>> import numpy as np
    >>> from skestimators.galaxy_zoo import project_galaxy_zoo
    >>> p = project_galaxy_zoo(np.full((1, 37), 0.5))
    >>> p[0, :5].round(4).tolist()  # Q1, then Q2 sums to Class1.2
    [0.3333, 0.3333, 0.3333, 0.1667, 0.1667]
    >>> bool(np.allclose(project_galaxy_zoo(p), p))
    True
    """
    y = np.clip(_as_targets(y_pred, "y_pred"), 0.0, None)
    # Shares are scale-free: each row over its largest value, so that sums of
    # huge finite outputs do not overflow (Q1 summed to 0 at 1e308).
    peak = y.max(axis=1, keepdims=True)
    y = np.divide(y, peak, out=np.zeros_like(y), where=peak > 0)
    out = np.empty_like(y)
    for question in GALAXY_ZOO_QUESTIONS:
        group = y[:, question.start : question.stop]
        total = group.sum(axis=1, keepdims=True)
        share = np.divide(
            group,
            total,
            out=np.full_like(group, 1.0 / group.shape[1]),
            where=total > 0,
        )
        if question.parent is not None:
            share = share * out[:, question.parent : question.parent + 1]
        out[:, question.start : question.stop] = share
    if isinstance(y_pred, pd.DataFrame):
        projected = pd.DataFrame(
            out, columns=list(GALAXY_ZOO_COLUMNS), index=y_pred.index
        )
        return projected.loc[:, list(y_pred.columns)]
    return out
