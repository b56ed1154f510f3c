"""Long power series ``sum_k c_k z^k`` summed in blocks of terms, as one matrix product.

Used by :mod:`clvtools.btyd._pareto_nbd_series` for series of more than ``BLOCKED_TERMS``
terms. Such series arise when z = (m - n) / (m + u) is close to 1, e.g. a Pareto/NBD fit
whose dropout heterogeneity vanishes (s ~ 300, beta ~ 25,000 weeks, alpha ~ 10 weeks: up to
130,000 terms on a 3,000-customer base). Horner's rule takes one numpy operation per term,
and on few rows with that many terms its Python loop is the whole cost (about 5 s per
likelihood evaluation there). In blocks of B terms,

    sum_k c_k z^k = sum_j z^(B j) sum_{i<B} c_{jB+i} z^i,

the inner sums of every block and every polynomial are one product of the (rows, B) matrix
of powers z^i with the (B, blocks) matrix of coefficients, so the Python work no longer
grows with the number of terms.

Accuracy: the powers are exp(i log z), of relative error below (|i log z| + 1) eps; every
term and coefficient of the sum S is positive (the derivative sums have terms of one sign
per coefficient sequence), so the sum keeps that relative error, about 1e-14 where terms
still matter (|k log z| < 45), against 1e-16 for Horner's rule. Each row is computed from
its own z and the coefficients alone, with the same operations whatever the other rows, so
a subset of the rows gets the same numbers bit for bit (:func:`_tiled_product`).
"""
from __future__ import annotations

import numpy as np

__all__ = ["BLOCKED_TERMS", "blocked_sums", "coefficient_blocks"]

BLOCKED_TERMS = 1024   # longer series are summed in blocks (shorter ones: Horner's rule)
_BLOCK = 128           # terms per block: the inner dimension of the matrix product
_CELLS = 1 << 20       # rows per step such that the (rows, blocks, polynomials) array is 8 MiB
_TILE = 8              # rows padded to a multiple of this (see _tiled_product)


def coefficient_blocks(coefs) -> np.ndarray:
    """The coefficients of several polynomials as the right factor of :func:`blocked_sums`.

    Parameters
    ----------
    coefs : sequence of numpy.ndarray
        L coefficient arrays, lengths may differ (a shorter one is padded with zeros).

    Returns
    -------
    numpy.ndarray, shape (B, n_blocks * L)
        Column ``j * L + l`` holds coefficients ``jB`` to ``jB + B - 1`` of polynomial l:
        the first columns are the first blocks, so a shorter sum uses a leading slice.
    """
    n_poly = len(coefs)
    n_blocks = -(-max(len(cf) for cf in coefs) // _BLOCK)
    padded = np.zeros((n_poly, n_blocks * _BLOCK))
    for j, cf in enumerate(coefs):
        padded[j, : len(cf)] = cf
    return padded.reshape(n_poly, n_blocks, _BLOCK).transpose(2, 1, 0).reshape(_BLOCK, -1)


def blocked_sums(blocks: np.ndarray, n_poly: int, n_terms: int, z: np.ndarray) -> np.ndarray:
    """Sums ``sum_k c_k z^k`` of the L polynomials of ``blocks`` at the same z.

    Parameters
    ----------
    blocks : numpy.ndarray, shape (B, n_blocks * L)
        :func:`coefficient_blocks` of the L = ``n_poly`` polynomials.
    n_poly : int
        L.
    n_terms : int
        Sum the terms k <= n_terms, rounded up to whole blocks (the terms after are
        below the caller's bound; whole blocks keep a row's sum a function of its own z and
        ``n_terms`` alone).
    z : numpy.ndarray, shape (n,)
        Arguments in [0, 1).

    Returns
    -------
    numpy.ndarray, shape (L, n)
        Row l holds polynomial l at every z.
    """
    n_blocks = min(-(-(n_terms + 1) // _BLOCK), blocks.shape[1] // n_poly)
    # the first blocks of each polynomial (contiguous: a strided factor is multiplied slower)
    C = np.ascontiguousarray(blocks[:, : n_blocks * n_poly])
    with np.errstate(divide="ignore"):
        log_z = np.log(z)
    inner_exp = np.arange(_BLOCK, dtype=float)
    block_exp = _BLOCK * np.arange(n_blocks, dtype=float)
    out = np.empty((n_poly, len(z)))
    step = max(1, _CELLS // (n_poly * n_blocks))
    for r0 in range(0, len(z), step):
        lz = log_z[r0 : r0 + step, None]
        with np.errstate(invalid="ignore"):  # z = 0: 0 * log 0; z^0 = 1 is set below
            powers = np.exp(lz * inner_exp)
            starts = np.exp(lz * block_exp)
        powers[:, 0] = 1.0
        starts[:, 0] = 1.0
        inner = _tiled_product(powers, C).reshape(len(lz), n_blocks, n_poly)
        inner *= starts[:, :, None]
        # each row's blocks added in the same order whatever the other rows (last axis)
        out[:, r0 : r0 + step] = np.ascontiguousarray(inner.transpose(0, 2, 1)).sum(axis=2).T
    return out


def _tiled_product(powers: np.ndarray, C: np.ndarray) -> np.ndarray:
    """``powers @ C`` with the rows padded to a multiple of ``_TILE``.

    One row alone would be a matrix-vector product, whose sums BLAS orders differently from
    a matrix product's; padded, every row is summed by the same kernel whatever the other
    rows (tested), so a subset of the rows gets the same numbers bit for bit.
    """
    n = len(powers)
    padded = np.zeros((-(-n // _TILE) * _TILE, powers.shape[1]))
    padded[:n] = powers
    return (padded @ C)[:n]
