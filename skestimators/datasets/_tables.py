"""Reading the CSV tables of the loaders, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def read_csv_table(path, **kwargs) -> pd.DataFrame:
    """``pd.read_csv(path, **kwargs)``, refusing an empty or malformed file by name.

    pandas' own errors ("No columns to parse from file", a
    UnicodeDecodeError) do not say which file of a data set is at fault.
    """
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as err:
        raise ValueError(f"{Path(path)} is not a readable CSV table: {err}") from err
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{Path(path)} is not UTF-8 text (byte {err.object[err.start]:#04x} is "
            "not valid UTF-8). Save the table as UTF-8 (e.g. from Latin-1 with "
            "iconv -f latin1 -t utf-8)."
        ) from err
