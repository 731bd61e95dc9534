"""Membership of a text column in a large set of values.

pandas' `isin` on pyarrow-backed text builds a Python list of every value it is given (45 s for a 10M-line
column here), so a column tested against another column goes through pyarrow's own `is_in` instead."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def is_in(column: pd.Series | pd.Index, values: Any) -> np.ndarray:
    """A boolean array: which entries of `column` are among `values`."""
    left = _arrow(column)
    if left is None or (not pa.types.is_string(left.type) and not pa.types.is_large_string(left.type)):
        return np.asarray(column.isin(pd.unique(np.asarray(values, dtype=object))), dtype=bool)
    try:
        right = _arrow(values)
        right = pa.array(np.asarray(values, dtype=object), type=left.type, from_pandas=True) if right is None \
            else right.cast(left.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # values that are not all text: pandas decides, slowly
        return np.asarray(column.isin(pd.unique(np.asarray(values, dtype=object))), dtype=bool)
    # A missing entry is among `values` when they hold a missing value too, as pandas' isin has it.
    found = pc.is_in(left, value_set=pc.unique(right), skip_nulls=False)
    return np.asarray(found.fill_null(False), dtype=bool)


def _arrow(values: Any) -> pa.Array | pa.ChunkedArray | None:
    """The pyarrow array behind pandas text, or None when it is not held in pyarrow."""
    array = values.array if isinstance(values, pd.Series | pd.Index) else values
    if isinstance(array, pd.api.extensions.ExtensionArray) and hasattr(array, "__arrow_array__") and \
            isinstance(array.dtype, pd.StringDtype) and array.dtype.storage == "pyarrow":
        return pa.array(array)
    return None
