"""The Galaxy Zoo 2 decision tree, as used by the Kaggle Galaxy Challenge (2014).

This module is the single definition of the 37 answer columns and of the
questions that group them. It depends on nothing but the standard library so
that :mod:`skestimators.nn` (torch), :mod:`skestimators.metrics` and
:mod:`skestimators.datasets` can all import it.

Each question's answers are vote fractions weighted by the fraction of
volunteers who reached the question: the answers of a question sum to the
value of the answer that leads to it (its *parent*), or to 1 for the two
questions asked of everybody (Q1 and Q6).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "GALAXY_ZOO_ANSWERS",
    "GALAXY_ZOO_COLUMNS",
    "GALAXY_ZOO_QUESTIONS",
    "GalaxyZooQuestion",
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
        for a question asked of everybody (whose answers sum to 1).

    See Also
    --------
    skestimators.metrics.project_galaxy_zoo : Make predictions obey the tree.

    Examples
    --------
    >>> from skestimators.nn import GALAXY_ZOO_COLUMNS, GALAXY_ZOO_QUESTIONS
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
