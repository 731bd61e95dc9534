"""The tiled inverse equals the dense one, at tile sizes that do and do not divide the matrix; EASE's weights from
tiles equal the closed form computed densely."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from batch.models.ease import ease_weights, gram_tiles
from batch.models.tiled import edges, empty_tiles, spd_inverse, to_dense


def _spd(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + 5, n))
    return x.T @ x + n * np.eye(n)


def _as_tiles(dense: np.ndarray, tile: int) -> list[list[np.ndarray]]:
    tiles = empty_tiles(len(dense), dense.dtype.type, tile)
    bounds = edges(len(dense), tile)
    for i, row in enumerate(tiles):
        for j in range(len(row)):
            row[j][:] = dense[bounds[i]:bounds[i + 1], bounds[j]:bounds[j + 1]]
    return tiles


@pytest.mark.parametrize(("n", "tile"), [(23, 5), (24, 8), (7, 50), (1, 3)])
def test_the_tiled_inverse_is_the_inverse(n: int, tile: int) -> None:
    matrix = _spd(n, seed=n)
    inverse = to_dense(spd_inverse(_as_tiles(matrix, tile)))
    np.testing.assert_allclose(inverse, np.linalg.inv(matrix), rtol=1e-9, atol=1e-12)


def test_a_matrix_that_is_not_positive_definite_is_refused() -> None:
    matrix = -np.eye(6)
    with pytest.raises(ValueError, match="not positive definite"):
        spd_inverse(_as_tiles(matrix, 4))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ease_weights_from_tiles_equal_the_closed_form(dtype: type[np.floating]) -> None:
    rng = np.random.default_rng(3)
    x = sp.csr_matrix((rng.random((60, 29)) < 0.2).astype(np.float32))
    weights = ease_weights(gram_tiles(x, dtype, chunk_pairs=50, tile=6), l2=4.0)
    gram = (x.T @ x).toarray().astype(np.float64) + 4.0 * np.eye(29)
    precision = np.linalg.inv(gram)
    expected = -precision / np.diag(precision)[None, :]
    np.fill_diagonal(expected, 0.0)
    assert weights.dtype == np.float32 and weights.flags.c_contiguous
    np.testing.assert_allclose(weights, expected, rtol=1e-4 if dtype is np.float32 else 1e-6, atol=1e-6)
