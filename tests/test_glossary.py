"""Every network estimator speaks the vocabulary of the user guide's glossary."""

import inspect
import re
from pathlib import Path

import pytest

import skestimators
from skestimators import (
    GalaxyZooRegressor,
    ImageClassifier,
    NetClassifier,
    NetRegressor,
    SpatioTemporalRegressor,
    SpectraAuxClassifier,
)
from skestimators import nn as snn

GLOSSARY = (
    Path(__file__).resolve().parents[1] / "docs" / "user_guide" / "glossary.rst"
).read_text()
ESTIMATORS = [
    NetClassifier,
    NetRegressor,
    SpectraAuxClassifier,
    ImageClassifier,
    GalaxyZooRegressor,
    SpatioTemporalRegressor,
]
# Names that once meant a glossary concept; none may come back.
RETIRED = {
    "branch", "backbone", "architecture", "hidden", "hidden_units",
    "conv_channels", "head_units", "aux_units", "lstm_hidden", "channels",
    "widths",
}  # fmt: skip
TRAINING = [
    "max_epochs", "batch_size", "lr", "optimizer", "weight_decay",
    "lr_scheduler", "lr_scheduler_params", "early_stopping",
    "validation_fraction", "validation_cv", "patience", "tol", "gradient_clip",
    "device", "amp", "warm_start", "random_state", "verbose", "callbacks",
    "checkpoint",
]  # fmt: skip


def _entry(name):
    """The glossary text of the term ``name`` (its definition paragraph)."""
    match = re.search(
        rf"^``{name}``.*?\n((?:    .*\n)+)", GLOSSARY, flags=re.MULTILINE
    ) or re.search(rf"^(?:``\w+``, )*``{name}``.*\n((?:    .*\n)+)", GLOSSARY, re.M)
    assert match, f"{name!r} is not defined in the glossary"
    return " ".join(match.group(1).split())


def _parameters(cls):
    return {
        name: p.default
        for name, p in inspect.signature(cls).parameters.items()
        if name != "self"
    }


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_every_parameter_is_in_the_glossary_with_its_default(cls):
    for name, default in _parameters(cls).items():
        if name in (
            "spectra_key",
            "aux_key",
            "positions",
            "merge",
            "constraint",
            "bidirectional",
            "pooling",
            "augment",
            "mirror",
            "chirality_pairs",
            "max_shift",
            "zoom",
            "tta",
            "layout",
        ):
            continue  # one estimator's own concepts, in its docstring
        text = _entry(name)
        shown = f'"{default}"' if isinstance(default, str) else f"{default}"
        assert f"``{shown}``" in text, (
            f"{cls.__name__}.{name}={default!r} is not a default the glossary "
            f"gives: {text}"
        )


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_shared_training_parameters_everywhere_and_no_retired_names(cls):
    params = _parameters(cls)
    assert set(TRAINING) <= set(params)
    assert "module" in params
    assert not RETIRED & set(params), RETIRED & set(params)
    # Each parameter is declared in the estimator's own constraints, which
    # extend the shared ones without removing any.
    assert set(params) == set(cls._parameter_constraints)


def test_shared_defaults_are_equal_unless_the_glossary_says_why():
    # reasons in the glossary
    differing = {
        "max_epochs", "batch_size", "lr", "lr_scheduler", "early_stopping",
        "validation_fraction",
    }  # fmt: skip
    for name in set(TRAINING) - differing:
        defaults = {repr(_parameters(cls)[name]) for cls in ESTIMATORS}
        assert len(defaults) == 1, (name, defaults)
    for name in differing:
        assert "chosen by" in _entry(name) or "needed" in _entry(name)


def test_nn_modules_speak_the_same_vocabulary():
    for name in snn.__all__:
        obj = getattr(snn, name)
        if inspect.isclass(obj) and issubclass(obj, snn.MLP.__mro__[1]):
            params = set(inspect.signature(obj).parameters)
            assert not RETIRED & params, (name, RETIRED & params)


def test_glossary_page_is_in_the_user_guide():
    index = Path(skestimators.__file__).resolve().parents[1] / "docs" / "user_guide"
    assert "glossary" in (index / "index.rst").read_text()
