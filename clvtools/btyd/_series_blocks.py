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
a subset of the rows gets the same numbers bit for bit: the rows are padded to a multiple of
eight, as one row alone would make a matrix-vector product, whose sums BLAS orders
differently from a matrix product's (tested).
"""
from __future__ import annotations

import numpy as np

__all__ = ["BLOCKED_TERMS", "blocked_sums", "coefficient_blocks"]

BLOCKED_TERMS = 1024   # longer series are summed in blocks (shorter ones: Horner's rule)
_BLOCK = 128           # terms per block: the inner dimension of the matrix product
_CELLS = 1 << 20       # rows per step such that a (blocks, rows) array is 8 MiB
_TILE = 8              # rows padded to a multiple of this (see blocked_sums)


def coefficient_blocks(coefs) -> np.ndarray:
    """The coefficients of several polynomials in blocks, the left factor of
    :func:`blocked_sums`.

    Parameters
    ----------
    coefs : sequence of numpy.ndarray
        L coefficient arrays, lengths may differ (a shorter one is padded with zeros).

    Returns
    -------
    numpy.ndarray, shape (L, n_blocks, B)
        Entry ``[l, j, i]`` is coefficient ``jB + i`` of polynomial l: a shorter sum takes
        the leading blocks, each polynomial's a contiguous (blocks, B) matrix.
    """
    n_blocks = -(-max(len(cf) for cf in coefs) // _BLOCK)
    padded = np.zeros((len(coefs), n_blocks * _BLOCK))
    for j, cf in enumerate(coefs):
        padded[j, : len(cf)] = cf
    return padded.reshape(len(coefs), n_blocks, _BLOCK)


def blocked_sums(blocks: np.ndarray, n_terms: int, z: np.ndarray) -> np.ndarray:
    """Sums ``sum_k c_k z^k`` of the L polynomials of ``blocks`` at the same z.

    Parameters
    ----------
    blocks : numpy.ndarray, shape (L, n_blocks, B)
        :func:`coefficient_blocks` of the L polynomials.
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
    n_poly = blocks.shape[0]
    n_blocks = min(-(-(n_terms + 1) // _BLOCK), blocks.shape[1])
    with np.errstate(divide="ignore"):
        log_z = np.log(z)
    inner_exp = np.arange(_BLOCK, dtype=float)[:, None]
    block_exp = _BLOCK * np.arange(n_blocks, dtype=float)[:, None]
    out = np.empty((n_poly, len(z)))
    step = max(_TILE, _CELLS // n_blocks // _TILE * _TILE)
    for r0 in range(0, len(z), step):
        lz = log_z[None, r0 : r0 + step]
        n = lz.shape[1]
        # columns padded to a multiple of _TILE with z = 0 (see _column_product)
        lz = np.concatenate((lz, np.full((1, -n % _TILE), -np.inf)), axis=1)
        with np.errstate(invalid="ignore"):  # z = 0: 0 * log 0; z^0 = 1 is set below
            powers = np.exp(inner_exp * lz)   # (B, columns): z^i
            starts = np.exp(block_exp * lz)   # (blocks, columns): z^(jB)
        powers[0] = 1.0
        starts[0] = 1.0
        for poly in range(n_poly):
            inner = blocks[poly, :n_blocks] @ powers  # (blocks, columns): each block's sum
            inner *= starts
            # each column's blocks added in order j = 0, 1, ... whatever the other columns
            out[poly, r0 : r0 + n] = inner.sum(axis=0)[:n]
    return out
