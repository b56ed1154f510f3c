"""BG/NBD with static customer covariates.

Customer i with purchase covariates z_i and dropout covariates w_i has

    lambda_i ~ Gamma(r, alpha_i), alpha_i = alpha exp(-gamma_p' z_i) (purchase rate x e^{gamma_p'z})
    after each repeat purchase, dropout with probability p_i = 1 - (1 - p0_i)^{m_i},
    p0_i ~ Beta(a, b),  m_i = exp(gamma_d' w_i),

which is what :func:`clvtools.data.generator.generate_customer_base` simulates
(``model="bgnbd"``): the per-purchase survival probability (1 - p0) is raised to the power
m_i, i.e. the "hazard" -log(1 - p) of leaving after a purchase is multiplied by m_i, as the
dropout rate is in the Pareto/NBD. The purchase side is CLVTools' (and the Pareto/NBD's).
(R's CLVTools instead multiplies both a and b by exp(gamma_d' w), which leaves the mean
dropout probability a / (a + b) unchanged; the form here has a closed-form likelihood too and
its coefficients read like the Pareto/NBD's.)

Likelihood (derived as eq. (6) of Fader, Hardie & Lee 2005, "Counting Your Customers the Easy
Way", [FHL05], by integrating over p0 with E[(1 - p0)^c] = B(a, b + c) / B(a, b)):

    L_i = Gamma(r+x) alpha_i^r / Gamma(r) * [ B(a, b + m x) / B(a, b) (alpha_i + T)^-(r+x)
          + 1{x>0} (B(a, b + m (x-1)) - B(a, b + m x)) / B(a, b) (alpha_i + t_x)^-(r+x) ].

With m = 1 the second term is B(a+1, b+x-1) / B(a, b) and this is [FHL05] eq. (6).
P(alive) is the first term's share. The conditional expectation has no closed form for
m != 1: with r' = r + x, alpha' = alpha_i + T and p0 ~ Beta(a, b + m x) given alive,
E[X(T, T+t) | alive] = E[(1 - (alpha' / (alpha' + p t))^r') / p], p = 1 - (1 - p0)^m, a
one-dimensional integral taken by generalised Gauss-Laguerre quadrature (see
:func:`_expected_if_alive`); for m = 1 it is [FHL05] eq. (10) in closed form.
"""
from __future__ import annotations

import numpy as np
from scipy import special
from scipy.special import betaln, digamma, gammaln

from .bgnbd import BetaGeoFitter
from .covariates import CovariateBTYDFitter
from .utils import distinct_rows

__all__ = ["BetaGeoCovariatesFitter", "bgnbd_rows"]

#: Gauss-Laguerre nodes for the conditional expectation when m != 1
_N_NODES = 96


def _log1mexp(d):
    """log(1 - exp(d)) for d < 0, accurate at both ends."""
    return np.where(d > -0.6931471805599453, np.log(-np.expm1(d)), np.log1p(-np.exp(d)))


def _pairs(m, x, pattern=None):
    """The distinct (m_i, x) pairs of the rows: the first row of each, shape (g,), and each
    row's pair, shape (n,).

    ``pattern`` (integer codes of the rows' dropout covariate patterns, shape (n,)) finds them
    by integer arithmetic instead of hashing the floats m_i, the dominant cost of a fit's
    evaluation once the beta functions are per pair; it is used only where every row's m_i
    is exactly its pair's (a matrix product may round one row's eta_d differently).
    """
    if pattern is not None and len(x):
        first, pair = pattern if isinstance(pattern, tuple) else pattern_pairs(pattern, x)
        if np.array_equal(m[first][pair], m):
            return first, pair
    return distinct_rows([m, x])


def pattern_pairs(pattern, x):
    """The distinct (dropout pattern, x) pairs of the rows: the first row of each, shape
    (g,), and each row's pair, shape (n,); ``pattern`` and ``x`` of shape (n,), n > 0.

    They do not change during a fit: :class:`BetaGeoCovariatesFitter` finds them once and
    passes them to :func:`bgnbd_rows` as its ``pattern`` (a pass over every row per
    evaluation otherwise)."""
    codes = pattern * (int(x.max()) + 1) + x.astype(np.int64)
    first_of = np.full(int(codes.max()) + 1, len(codes))
    # each code keeps one of its rows (which one does not matter: they share x, and
    # m_i is checked by _pairs)
    first_of[codes[::-1]] = np.arange(len(codes))[::-1]
    present = np.flatnonzero(first_of < len(codes))
    renumber = np.empty(len(first_of), dtype=np.int64)
    renumber[present] = np.arange(len(present))
    return first_of[present], renumber[codes]


def bgnbd_rows(params, alpha, m, x, tx, T, grad=True, pattern=None):
    """Per-customer BG/NBD log-likelihood with per-row alpha_i and dropout multiplier m_i.

    Parameters
    ----------
    params : sequence of 4 floats
        (r, alpha, a, b); alpha is not read (alpha_i comes per row).
    alpha, m : numpy.ndarray, shape (n,)
        alpha_i (time units) and m_i = exp(gamma_d' w_i) (no unit).
    x, tx, T : numpy.ndarray, shape (n,)
    grad : bool
    pattern : numpy.ndarray of int, shape (n,), or tuple, optional
        The rows' dropout covariate patterns (:func:`_pairs`), or their
        :func:`pattern_pairs`; the same figures without.

    Returns
    -------
    ll : numpy.ndarray, shape (n,)
        log L_i (module docstring).
    g : tuple of five numpy.ndarray, shape (n,), only if ``grad``
        d log L_i / d log r, d log alpha_i, d log a, d log b, d log m_i.
    p_alive : numpy.ndarray, shape (n,), only if ``grad`` is False
    """
    r, a, b = float(params[0]), float(params[2]), float(params[3])
    # The beta and digamma functions depend on a row only through (m_i, x): a few hundred
    # distinct pairs (dropout covariate patterns x frequencies) against up to a million rows.
    # They are evaluated once per pair and gathered, in the same order of operations as
    # row by row, so every row's figures are bit for bit those of the direct evaluation.
    first, pair = _pairs(m, x, pattern)
    mu, xu = m[first], x[first]
    pos_u = xu > 0
    xm1 = np.maximum(xu - 1.0, 0.0)
    c1, c0 = b + mu * xu, b + mu * xm1
    B0 = betaln(a, b)
    Bx, Bx1 = betaln(a, c1), betaln(a, c0)
    D = np.where(pos_u, Bx - Bx1, -1.0)  # < 0
    pos = x > 0
    lT, ltx = np.log(alpha + T), np.log(alpha + tx)
    rx = r + x
    logA1 = (Bx - B0)[pair] - rx * lT
    logA2 = np.where(pos_u, Bx1 - B0 + _log1mexp(D), -np.inf)[pair] - rx * ltx
    tail = np.logaddexp(logA1, logA2)
    w1 = np.exp(logA1 - tail)
    la = np.log(alpha)
    ll = (gammaln(r + xu) - gammaln(r))[pair] + r * la + tail
    if not grad:
        return ll, w1
    w2 = np.exp(logA2 - tail)
    g_r = (digamma(r + xu) - digamma(r))[pair] + la - w1 * lT - w2 * ltx
    g_la = r - rx * (w1 * alpha / (alpha + T) + w2 * alpha / (alpha + tx))
    psi_ab, psi_b = digamma(a + b), digamma(b)
    psi_c1, psi_ac1 = digamma(c1), digamma(a + c1)
    psi_c0, psi_ac0 = digamma(c0), digamma(a + c0)
    k = np.where(pos_u, 1.0 / np.expm1(-np.where(pos_u, D, -1.0)), 0.0)
    dBx_c, dBx1_c = psi_c1 - psi_ac1, psi_c0 - psi_ac0
    dB0_b = psi_b - psi_ab
    dA1_a = psi_ab - psi_ac1
    dA1_b = dBx_c - dB0_b
    dA1_m = dBx_c * mu * xu
    dA2_a = psi_ab - (1.0 + k) * psi_ac0 + k * psi_ac1
    dA2_b = (1.0 + k) * dBx1_c - k * dBx_c - dB0_b
    dA2_m = (1.0 + k) * dBx1_c * mu * xm1 - k * dBx_c * mu * xu
    w2p = np.where(pos, w2, 0.0)
    g_a = w1 * dA1_a[pair] + w2p * dA2_a[pair]
    g_b = w1 * dA1_b[pair] + w2p * dA2_b[pair]
    g_m = w1 * dA1_m[pair] + w2p * dA2_m[pair]
    return ll, (r * g_r, g_la, a * g_a, b * g_b, g_m)


def _closed_form_if_alive(r, alpha, a, b, t, x, T):
    """E[X(T, T+t) | alive] for m = 1, [FHL05] eq. (10) divided by P(alive), in the form
    of :meth:`BetaGeoFitter.conditional_expected_number_of_purchases_up_to_time`
    (Euler-transformed hypergeometric function; per-row alpha)."""
    c = a + b + x - 1
    z = t / (alpha + T + t)
    hyp = special.hyp2f1(a + b - 1 - r, a - 1, c, z)
    return c / (a - 1) * -np.expm1((a - 1) * np.log1p(-z) + np.log(hyp))


def _expected_if_alive(r, alpha, a, b, m, t, x, T, n_nodes=_N_NODES):
    """E[X(T, T+t) | alive at T, history] for any m > 0, by quadrature.

    Given alive at T, lambda ~ Gamma(r + x, alpha_i + T) and p0 ~ Beta(a, b' = b + m x); the
    expected purchases in t of a customer who drops after each purchase with probability p
    are (1 - e^{-lambda p t}) / p ([FHL05] eq. 7), whose mean over lambda is
    g(p) = (1 - (alpha' / (alpha' + p t))^{r'}) / p. With s = -log(1 - p0) and v = b' s, p0
    has density proportional to v^(a-1) e^-v phi(v), phi(v) = ((1 - e^{-y}) / y)^(a-1),
    y = v / b', and p = 1 - e^{-m y}: the mean is sum_k w_k phi_k g_k / sum_k w_k phi_k over
    the generalised Gauss-Laguerre nodes of weight v^(a-1) e^-v.

    Shapes: alpha, m, x, T of shape (n,); t of shape (n,) or (n, k) (k horizons per row,
    sharing the nodes' weights, which do not depend on t); r, a, b scalars. Returns t's shape.
    """
    v, wts = special.roots_genlaguerre(n_nodes, a - 1.0)
    # Nodes whose weight is below 1e-20 of the total add nothing a double holds: they are
    # the largest v, where g (decreasing in p, so in v) is smallest, and phi varies across
    # the nodes by far less than a factor 1e4; about 55 of the 96 are left out (at 1e-30,
    # about 45, for 15 % more CPU: the same figures to 1e-15 relative, since fewer terms
    # may group numpy's sums differently in the last bit)
    kept = wts > 1e-20 * wts.sum()
    v, wts = v[kept], wts[kept]
    # the nodes' p and weights depend on a row through (m_i, x) alone: computed once per
    # distinct pair (a few hundred) and gathered, the same figures as row by row
    first, pair = distinct_rows([m, x])
    mu, xu = m[first], x[first]
    bp = (b + mu * xu)[:, None]
    y = v[None, :] / bp
    phi = np.exp((a - 1.0) * np.log(-np.expm1(-y) / y))
    p = -np.expm1(-mu[:, None] * y)
    wphi = wts[None, :] * phi
    norm = np.sum(wphi, axis=1)[pair]
    # g(p) = -expm1(-r' log1p(p t / alpha')) / p: the 1 / p and the sign go into the node
    # weights once, not once per horizon
    weight = (-wphi / p)[pair]
    p = p[pair]
    neg_rp = -(r + x)[:, None]
    horizons = t.reshape(len(x), -1) / (alpha + T)[:, None]  # t / alpha'
    out = np.empty(horizons.shape)
    g = np.empty(p.shape)  # one buffer for every horizon: the same operations, in place
    for k in range(horizons.shape[1]):
        np.multiply(p, horizons[:, k, None], out=g)
        np.log1p(g, out=g)
        g *= neg_rp
        np.expm1(g, out=g)
        out[:, k] = np.einsum("ij,ij->i", weight, g) / norm
    return out.reshape(t.shape)


class BetaGeoCovariatesFitter(CovariateBTYDFitter):
    """BG/NBD with static covariates on the purchase and on the dropout process.

    alpha_i = alpha exp(-gamma_p' z_i) (``purchase:<name>`` is the log-multiplier of the
    purchase rate) and per-purchase survival (1 - p0)^{exp(gamma_d' w_i)} (``dropout:<name>``
    is the log-multiplier of -log(1 - p), the per-purchase dropout hazard); see the module
    docstring for the likelihood and for how this differs from R's CLVTools.

    Parameters
    ----------
    penalizer_coef : float, default 0.0
        L2 penalty on (r, alpha, a, b) and the coefficients, added to the mean negative
        log-likelihood per customer.

    Attributes
    ----------
    params_ : pandas.Series
        ``r``, ``alpha`` (time units), ``a``, ``b``, then ``purchase:<name>`` and
        ``dropout:<name>``.
    variance_matrix_, standard_errors_, confidence_intervals_, summary, log_likelihood_,
    AIC_, BIC_, purchase_encoder_, dropout_encoder_
        As for :class:`~clvtools.btyd.pareto_nbd_covariates.ParetoNBDCovariatesFitter`.
    """

    _param_names = ("r", "alpha", "a", "b")
    _time_params = ("alpha",)
    _base_fitter = BetaGeoFitter

    def _rows(self, params, eta_p, eta_d, data, grad):
        alpha = params[1]
        n = len(data["frequency"])
        a_i = np.broadcast_to(alpha * np.exp(-eta_p), (n,))
        m_i = np.broadcast_to(np.exp(eta_d), (n,))
        ll, (g_r, g_la, g_a, g_b, g_m) = bgnbd_rows(params, a_i, m_i, data["frequency"],
                                                    data["recency"], data["T"], True,
                                                    self._pattern_pairs(data))
        return ll, np.vstack([g_r, g_la, g_a, g_b]), -g_la, g_m

    def _pattern_pairs(self, data):
        """The rows' :func:`pattern_pairs`, found once per fit's table (``data``), or their
        dropout patterns outside a fit (None without)."""
        pattern = data.get("dropout_pattern")
        memo = getattr(self, "_fit_memo", None)
        if pattern is None or memo is None or not len(pattern):
            return pattern
        known = memo.get("pairs")
        if known is None or known[0] is not pattern or known[1] is not data["frequency"]:
            known = memo["pairs"] = (pattern, data["frequency"],
                                     pattern_pairs(pattern, data["frequency"]))
        return known[2]

    def _per_customer(self, eta_p, eta_d):
        r, alpha, a, b = self.params_.to_numpy()[:4]
        return r, alpha * np.exp(-eta_p), a, b, np.exp(eta_d)

    # ---- predictions ------------------------------------------------------------------------
    def _p_alive(self, x, tx, T, ep, ed):
        r, a_i, a, b, m = self._per_customer(ep, ed)
        a_i = np.broadcast_to(a_i, x.shape).astype(float)
        m = np.broadcast_to(m, x.shape).astype(float)
        _, p = bgnbd_rows(self.params_.to_numpy()[:4], a_i, m, x, tx, T, False)
        return p, r, a_i, a, b, m

    def _if_alive(self, t, x, T, r, a_i, a, b, m):
        """E[X(T, T+t) | alive]; x, T, a_i, m of shape (n,), t of shape (n,) or (n, k)."""
        horizons = t.reshape(len(x), -1)
        out = np.empty(horizons.shape)
        one = m == 1.0
        if one.any():
            with np.errstate(all="ignore"):  # c = a+b+x-1 <= 0 has no closed form: below
                closed = _closed_form_if_alive(r, a_i[one, None], a, b, horizons[one],
                                               x[one, None], T[one, None])
            out[one] = closed
            one[one] = np.isfinite(closed).all(axis=1)
        rest = np.flatnonzero(~one)
        # The quadrature runs once per distinct (alpha_i + T, m_i, x, t), all it reads of a
        # row: customers share attribute levels and (frequency, age), a quarter as many rows
        # on a million customers. Horizons shared by every row (a forecast's month ends) are
        # left out of the key (known without a look when broadcast from one row, as
        # _by_horizon's are: the look copies an (n, k) array).
        shared = horizons.strides[0] == 0 or bool(np.all(horizons[rest] == horizons[rest[:1]]))
        first, inverse = distinct_rows([a_i[rest] + T[rest], m[rest], x[rest],
                                        *([] if shared else horizons[rest].T)])
        rows = rest[first]
        values = np.empty((len(rows), horizons.shape[1]))
        for c0 in range(0, len(rows), 16384):  # bounds the (rows x nodes) temporaries
            i = rows[c0: c0 + 16384]
            values[c0: c0 + 16384] = _expected_if_alive(r, a_i[i], a, b, m[i], horizons[i],
                                                        x[i], T[i])
        out[rest] = values[inverse]
        return out.reshape(t.shape)

    def conditional_probability_alive(self, frequency, recency, T, covariates=None):
        """P(alive at T | x, t_x, T, covariates): the first term's share of L_i (module
        docstring; [FHL05] eq. (6) and Hardie's note 021 for m = 1).

        Parameters
        ----------
        frequency, recency, T : scalar, array_like or Series, shape (n,)
        covariates : pandas.DataFrame, shape (n, ...) or (1, ...), optional

        Returns
        -------
        float, numpy.ndarray or pandas.Series, shape (n,)
            Probabilities in [0, 1].
        """
        (x, tx, TT), ep, ed, index, scalar, shape = self._predict_inputs(
            {"frequency": frequency, "recency": recency, "T": T}, covariates,
            "conditional_probability_alive")
        p = self._p_alive(x, tx, TT, ep, ed)[0]
        return self._out(p, index, scalar, shape, "conditional_probability_alive")

    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T,
                                                            covariates=None):
        """E[X(T, T+t) | x, t_x, T, covariates] = P(alive) E[X(T, T+t) | alive, ...].

        [FHL05] eq. (10) for customers with m_i = 1, the quadrature of the module docstring
        otherwise (96 nodes: relative error 1e-14 to 1e-6 against mpmath's adaptive quadrature
        in the tested cases; see the tests).

        Parameters
        ----------
        t : scalar or array_like
            Length of the period (time units).
        frequency, recency, T : scalar, array_like or Series, shape (n,)
        covariates : pandas.DataFrame, optional
        """
        (t, x, tx, TT), ep, ed, index, scalar, shape = self._predict_inputs(
            {"t": t, "frequency": frequency, "recency": recency, "T": T}, covariates,
            "conditional_expected_number_of_purchases_up_to_time")
        p, r, a_i, a, b, m = self._p_alive(x, tx, TT, ep, ed)
        out = p * self._if_alive(t, x, TT, r, a_i, a, b, m)
        return self._out(out, index, scalar, shape,
                         "conditional_expected_number_of_purchases_up_to_time")

    def _by_horizon(self, horizons, x, tx, T, ep, ed):
        # P(alive) once; the quadrature shares its node weights across horizons
        p, r, a_i, a, b, m = self._p_alive(x, tx, T, ep, ed)
        t = np.broadcast_to(horizons, (len(x), len(horizons)))
        expected = self._if_alive(t, x, T, r, a_i, a, b, m)
        expected *= p[:, None]  # in place: no second (n, k) array
        return p, expected

    def predict(self, t, frequency, recency, T, covariates=None):
        """Alias of :meth:`conditional_expected_number_of_purchases_up_to_time`."""
        return self.conditional_expected_number_of_purchases_up_to_time(
            t, frequency, recency, T, covariates)

    def expected_number_of_purchases_up_to_time(self, t, covariates=None):
        """E[X(t)] of a new customer with the given covariates ([FHL05] eq. (9) for m = 1):
        the conditional expectation at x = t_x = T = 0 (alive at acquisition).

        Parameters
        ----------
        t : scalar or array_like
            Time since acquisition (time units).
        covariates : pandas.DataFrame, optional
        """
        (t,), ep, ed, index, scalar, shape = self._predict_inputs(
            {"t": t}, covariates, "expected_number_of_purchases_up_to_time")
        zero = np.zeros(t.shape)
        r, a_i, a, b, m = self._per_customer(ep, ed)
        a_i = np.broadcast_to(a_i, t.shape).astype(float)
        m = np.broadcast_to(m, t.shape).astype(float)
        out = self._if_alive(t, zero, zero, r, a_i, a, b, m)
        return self._out(out, index, scalar, shape, "expected_number_of_purchases_up_to_time")

    def purchase_rate_if_alive(self, frequency, recency, T, covariates=None):
        """E[lambda | alive, x, t_x, T, covariates] = (r + x) / (alpha_i + T), per time unit."""
        (x, tx, TT), ep, ed, index, scalar, shape = self._predict_inputs(
            {"frequency": frequency, "recency": recency, "T": T}, covariates,
            "purchase_rate_if_alive")
        r, a_i, *_ = self._per_customer(ep, ed)
        return self._out((r + x) / (a_i + TT) + 0 * tx, index, scalar, shape,
                         "purchase_rate_if_alive")
