"""Reading the CSV tables of the loaders, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def read_csv_table(path, **kwargs) -> pd.DataFrame:
    """``pd.read_csv(path, **kwargs)``, refusing an empty or malformed file by name.

    pandas' own errors ("No columns to parse from file") do not say which
    file of a data set is at fault.
    """
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as err:
        raise ValueError(f"{Path(path)} is not a readable CSV table: {err}") from err
