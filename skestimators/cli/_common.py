"""The command group, its options and the error messages of every command."""

from __future__ import annotations

import logging
import pickle
import sys

import click

from .._version import __version__

EXIT_INVALID_ROWS = 3
EXIT_OUTPUT_LOCKED = 4
EXIT_INTERRUPTED = 130

#: The variants of :func:`skestimators.recipes.exoplanet_pipeline`, listed here
#: so that ``--help`` needs no torch (tests/test_cli.py checks they agree).
EXOPLANET_VARIANTS = (
    "best",
    "blend",
    "conv1d",
    "attention",
    "lstm",
    "dense",
    "conv1d_raw",
    "attention_raw",
    "lstm_raw",
    "dense_raw",
)

#: Errors shown as a message (exit code 1) rather than a traceback.
_ERRORS = (
    ValueError,
    OSError,
    RuntimeError,
    ImportError,
    EOFError,
    pickle.UnpicklingError,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="skestimators")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="More output: -v shows every training epoch and info logs; -vv also "
    "debug logs and the traceback of an error.",
)
def main(verbose: int) -> None:
    """scikit-learn estimators for scientific deep learning.

    \b
    Start here:
      skestimators demo         compare exoplanet models (a few minutes)
      skestimators train exoplanet builtin -o exoplanet.skops
      skestimators score exoplanet.skops FOLDER -o predictions.parquet
      skestimators info --check exoplanet.skops

    Each command's --help lists its choices and inputs.
    """
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _debug() -> bool:
    """Whether ``-vv`` was given: errors then show their traceback."""
    return _verbosity() >= 2


def _verbosity(local: int = 0) -> int:
    """The number of ``-v`` given before the command, or after it (``local``)."""
    context = click.get_current_context(silent=True)
    root = 0 if context is None else context.find_root().params.get("verbose", 0)
    return max(root, local)


def _message(exc: BaseException) -> str:
    """One line for an error: its message, or its type for unexpected ones.

    Only the first paragraph is kept: what follows a blank line (the
    tracebacks of failed fits in a comparison) is for the Python API, and for
    ``-vv``, which shows the error with its traceback.
    """
    text = " ".join(str(exc).split("\n\n", 1)[0].split())
    if isinstance(exc, _ERRORS) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _one_line_warnings():
    """A ``showwarning`` that shows each warning as ``Warning: <message>``,
    once per command: a model warning of its input at every chunk (a million
    rows, hundreds of chunks) is one line."""
    shown = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = f"Warning: {message}"
        if text not in shown:
            shown.add(text)
            click.echo(text, err=True)

    return show


def _stop(code: int, message: str):
    """End the command from an ``except`` block: with ``-vv``, re-raise the
    exception being handled (its traceback, for a bug report); else print
    ``message`` on stderr and exit with ``code`` (4 locked, 130 interrupted)."""
    if _debug():
        raise  # the exception the calling except block handles
    click.echo(message, err=True)
    sys.exit(code)
