import numpy as np
import pandas as pd

from common.data.membership import is_in


def test_text_column_against_another_column_array_and_list() -> None:
    column = pd.Series(["a", "b", None, "c", "a"], dtype="string")
    expected = np.array([True, False, False, True, True])
    assert (is_in(column, pd.Series(["c", "a", "a"], dtype="string")) == expected).all()
    assert (is_in(column, np.array(["a", "c"])) == expected).all()
    assert (is_in(column, ["a", "c", "zz"]) == expected).all()
    assert not is_in(column, []).any()


def test_missing_values_match_as_pandas_matches_them() -> None:
    column = pd.Series(["a", None, "b"], dtype="string")
    with_missing = pd.Series(["a", None], dtype="string")
    assert (is_in(column, with_missing) == column.isin(with_missing).to_numpy()).all()
    assert (is_in(column, np.array(["b", np.nan], dtype=object)) == np.array([False, True, True])).all()
    assert (is_in(column, [1, "a"]) == column.isin([1, "a"]).to_numpy()).all()


def test_agrees_with_pandas_isin_on_an_index_and_on_numbers() -> None:
    index = pd.Index(["x", "y", "z"], dtype="string")
    values = pd.Series(["y", "q"], dtype="string")
    assert (is_in(index, values) == index.isin(["y", "q"])).all()
    numbers = pd.Series([1, 2, 3])
    assert (is_in(numbers, np.array([3, 3, 1])) == np.array([True, False, True])).all()
