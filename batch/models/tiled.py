"""The inverse of a big symmetric positive definite matrix, computed in tiles.

Why tiles: OpenBLAS, which scipy and numpy bundle, crashes (SIGSEGV, no Python error) in some CPUs' kernels when
one operand of a BLAS or LAPACK call spans more than about 2 GiB: byte offsets in those kernels overflow 32 bits
(OpenBLAS issues #352, #1413; numpy #19685). A grocery history of 68k products had the batch die that way in
`potrf` on EASE's 20,000 x 20,000 float64 Gram matrix (3.2 GB). Here every BLAS/LAPACK call gets one tile, its
own contiguous array of at most `TILE` x `TILE` (32 MB in float64), whatever the matrix's size: the Cholesky
factorisation, the triangular inverse and the product that gives the inverse are blocked by hand, the way LAPACK
blocks them internally, with the same arithmetic.

A matrix is held as its lower triangle of tiles: `tiles[i][j]` for j <= i (the upper ones are their transposes).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from scipy.linalg import blas, lapack

from batch.memory import TILE

Tiles = list[list[np.ndarray]]


def edges(n: int, tile: int = TILE) -> list[int]:
    """The tile boundaries of an n x n matrix: [0, tile, 2 tile, ..., n]."""
    return [*range(0, n, tile), n] if n else [0]


def bounds_of(tiles: Tiles) -> list[int]:
    """The tile boundaries of a matrix held as tiles."""
    return [0, *itertools.accumulate(len(row[-1]) for row in tiles)]


def empty_tiles(n: int, dtype: type[np.floating[Any]], tile: int = TILE) -> Tiles:
    bounds = edges(n, tile)
    sizes = [b - a for a, b in itertools.pairwise(bounds)]
    return [[np.zeros((sizes[i], sizes[j]), dtype=dtype) for j in range(i + 1)] for i in range(len(sizes))]


def spd_inverse(tiles: Tiles) -> Tiles:
    """The inverse of the symmetric positive definite matrix whose lower tiles are given, as lower tiles. The input
    tiles are overwritten (the factor, then its inverse); raises ValueError if the matrix is not positive
    definite."""
    _cholesky(tiles)
    _invert_lower(tiles)
    return _gram_of_lower(tiles)


def _lapack(name: str, a: np.ndarray) -> Any:
    return lapack.get_lapack_funcs(name, (a,))


def _cholesky(t: Tiles) -> None:
    """In place: A = L L^T, right-looking, tile by tile."""
    for k in range(len(t)):
        factor, info = _lapack("potrf", t[k][k])(t[k][k], lower=True, clean=True)
        if info != 0:
            raise ValueError(f"the matrix is not positive definite (LAPACK potrf info {info} in tile {k})")
        t[k][k] = factor
        trsm = blas.get_blas_funcs("trsm", (factor,))
        for i in range(k + 1, len(t)):  # L_ik = A_ik L_kk^-T
            t[i][k] = np.ascontiguousarray(trsm(1.0, factor, t[i][k], side=1, lower=1, trans_a=1))
        for i in range(k + 1, len(t)):
            for j in range(k + 1, i + 1):
                t[i][j] -= t[i][k] @ t[j][k].T


def _invert_lower(t: Tiles) -> None:
    """In place: L -> L^-1 (lower triangular), row of tiles by row of tiles."""
    inverses = []
    for i in range(len(t)):
        inverse, info = _lapack("trtri", t[i][i])(t[i][i], lower=1)
        if info != 0:
            raise ValueError(f"a diagonal tile of the factor is singular (LAPACK trtri info {info})")
        inverses.append(inverse)
    for i in range(len(t)):
        # M_ij = -M_ii sum_{k=j}^{i-1} L_ik M_kj for j < i: rows above i already hold M, row i still holds L.
        row = [-inverses[i] @ sum((t[i][k] @ t[k][j] for k in range(j, i)), np.zeros_like(t[i][j]))
               for j in range(i)]
        t[i][:i] = row
        t[i][i] = inverses[i]


def _gram_of_lower(m: Tiles) -> Tiles:
    """P = M^T M for a lower-triangular M in tiles: P_ij = sum_{k >= i} M_ki^T M_kj (i >= j). Row i of P needs rows
    k >= i of M only, so each row overwrites M's row once it is computed."""
    for i in range(len(m)):
        row = [sum((m[k][i].T @ m[k][j] for k in range(i, len(m))), np.zeros_like(m[i][j])) for j in range(i + 1)]
        m[i][: i + 1] = row
    return m


def to_dense(tiles: Tiles, dtype: type[np.floating[Any]] = np.float64) -> np.ndarray:
    """The whole symmetric matrix (for tests and small matrices)."""
    bounds = bounds_of(tiles)
    dense = np.empty((bounds[-1], bounds[-1]), dtype=dtype)
    for i, row in enumerate(tiles):
        for j, tile in enumerate(row):
            dense[bounds[i]:bounds[i + 1], bounds[j]:bounds[j + 1]] = tile
            dense[bounds[j]:bounds[j + 1], bounds[i]:bounds[i + 1]] = tile.T
    return dense
