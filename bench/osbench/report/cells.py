"""How a table cell prints, the same in Markdown and HTML."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def format_cell(value: Any) -> str:
    """Empty for missing; 4 significant digits below 1000, whole numbers above
    (a modelled 1234.5 s reads better as 1234 than 1.234e+03)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return ""
        if number.is_integer() and abs(number) < 1e15:
            return str(int(number))
        return f"{number:.0f}" if abs(number) >= 1000 else f"{number:.4g}"
    return " ".join(str(value).split())


def is_numeric(series: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(series)) and not bool(
        pd.api.types.is_bool_dtype(series))
