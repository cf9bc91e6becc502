"""Families and links through one table.

Each `Family` gives the log density log p(y | eta, aux, trials) in two parts: `log_norm(y,
trials)`, the terms that depend on the data alone (log binomial coefficients, -log y!), computed
once per dataset in NumPy, and `logpdf`, the rest, evaluated at every step of a sampler or
optimiser; their sum is the density with every normalising constant (as lme4's logLik).
It also gives log Var(y) in terms of the link's stable log mu and log(1 - mu), so the Fisher
weight w = (dmu/deta)^2 / Var(y) used by penalised IRLS and the Laplace curvature is one
formula for every family, taken in logs; the unit deviance (R's family$dev.resids, without
the dispersion), the NumPyro distribution for the program, and a check of the response values.
`aux` holds the family's parameters beside mu (`AuxParameter`s, packed by `pack_aux`): sigma
(gaussian, and the sd of log y for the lognormal; the Student-t's scale, with its df), shape
(negative binomial, gamma), the precision phi (beta, beta-binomial) or the thresholds of the
cumulative ordinal family; `Family.rows` applies a dispersion or zero-inflation formula.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, log_ndtr, ndtr, xlogy
from jax.scipy.special import ndtri as jsp_ndtri
from scipy import special
from scipy.special import ndtri

from .errors import DataError, FamilyError
from .lazy_modules import numpyro_distributions as dist


@dataclass(frozen=True)
class Link:
    """g(mu) = eta. `log_mu`, `log1m_mu` and `log_mu_eta` are log(mu), log(1 - mu) and
    log |dmu/deta|, written stably."""

    name: str
    inverse: Callable
    mu_eta: Callable  # dmu/deta
    link: Callable

    def log_mu(self, eta):
        return _LOG_MU.get(self.name, lambda e: jnp.log(self.inverse(e)))(eta)

    def log1m_mu(self, eta):
        return _LOG1M_MU.get(self.name, lambda e: jnp.log1p(-self.inverse(e)))(eta)

    def log_mu_eta(self, eta):
        """log |dmu/deta|."""
        return _LOG_MU_ETA.get(self.name, lambda e: jnp.log(jnp.abs(self.mu_eta(e))))(eta)


@jax.custom_jvp
def _sigmoid_given(x, e):
    """sigmoid(x), given e = exp(-|x|) (computed once with log sigmoid)."""
    return jnp.where(x >= 0, 1.0, e) / (1.0 + e)


@_sigmoid_given.defjvp
def _sigmoid_given_jvp(primals, tangents):
    # e is a function of x, so x's tangent carries the whole derivative: s (1 - s) dx
    s = _sigmoid_given(*primals)
    return s, s * (1.0 - s) * tangents[0]


@jax.custom_jvp
def log_sigmoid(x):
    """log mu = log(1 / (1 + exp(-x))) of the logit link. Its derivative sigmoid(-x) reuses the
    value's exp(-|x|), so a gradient costs one exp and one log1p per row (about half of
    autodiff through logaddexp); derivatives of every order are exact."""
    return jnp.minimum(x, 0.0) - jnp.log1p(jnp.exp(-jnp.abs(x)))


@log_sigmoid.defjvp
def _log_sigmoid_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    e = jnp.exp(-jnp.abs(x))
    return jnp.minimum(x, 0.0) - jnp.log1p(e), _sigmoid_given(-x, e) * dx


def _normal_pdf(x):
    return jnp.exp(-0.5 * x * x) / jnp.sqrt(2 * jnp.pi)


LINKS = {
    "identity": Link("identity", lambda e: e, jnp.ones_like, lambda m: m),
    "log": Link("log", jnp.exp, jnp.exp, np.log),
    "logit": Link(
        "logit",
        lambda e: 1 / (1 + jnp.exp(-e)),
        lambda e: jnp.exp(-jnp.logaddexp(0.0, e) - jnp.logaddexp(0.0, -e)),
        lambda m: np.log(m / (1 - m)),
    ),
    "probit": Link("probit", ndtr, _normal_pdf, ndtri),
    "cloglog": Link(
        "cloglog",
        lambda e: -jnp.expm1(-jnp.exp(e)),
        lambda e: jnp.exp(e - jnp.exp(e)),
        lambda m: np.log(-np.log1p(-m)),
    ),
    "inverse": Link("inverse", lambda e: 1 / e, lambda e: -1 / (e * e), lambda m: 1 / m),
}
_LOG_MU = {
    "logit": log_sigmoid,
    "probit": log_ndtr,
    "cloglog": lambda e: jnp.log(-jnp.expm1(-jnp.exp(e))),
    "log": lambda e: e,
    "inverse": lambda e: -jnp.log(e),
}
_LOG1M_MU = {
    "logit": lambda e: log_sigmoid(-e),
    "probit": lambda e: log_ndtr(-e),
    "cloglog": lambda e: -jnp.exp(e),
}
_LOG_MU_ETA = {
    "logit": lambda e: log_sigmoid(e) + log_sigmoid(-e),
    "probit": lambda e: -0.5 * e * e - 0.5 * jnp.log(2 * jnp.pi),
    "cloglog": lambda e: e - jnp.exp(e),
    "log": lambda e: e,
    "inverse": lambda e: -2 * jnp.log(jnp.abs(e)),
    "identity": jnp.zeros_like,
}


def _gaussian_logpdf(y, eta, aux, trials, link):
    mu = link.inverse(eta)
    return -0.5 * ((y - mu) / aux) ** 2 - jnp.log(aux) - 0.5 * jnp.log(2 * jnp.pi)


def _binomial_logpmf(y, eta, aux, trials, link):
    if link.name == "logit":  # log(1 - mu) = log(mu) - eta: one softplus per row, not two
        return trials * link.log_mu(eta) - (trials - y) * eta
    return y * link.log_mu(eta) + (trials - y) * link.log1m_mu(eta)


@dataclass(frozen=True)
class StudentT:
    """The Student-t density of y with location mu, scale sigma and df degrees of freedom: df
    estimated (aux = (sigma, df) on a last axis; glmmTMB's t_family, brms's student_t) or fixed
    (`df`; aux = sigma). Hashable by df: a static argument of compiled code."""

    df: float | None = None

    def scale_and_df(self, aux):
        return (aux[..., 0], aux[..., 1]) if self.df is None else (aux, self.df)

    def logpdf(self, y, eta, aux, trials, link):
        sigma, nu = self.scale_and_df(aux)
        r = (y - link.inverse(eta)) / sigma
        const = gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * jnp.log(nu * jnp.pi)
        return const - jnp.log(sigma) - (nu + 1) / 2 * jnp.log1p(r * r / nu)

    def unit_deviance(self, y, mu, trials, aux):
        """2 (log p(y | mu = y) - log p(y | mu)) = (df + 1) log(1 + r^2 / df), r = (y - mu) /
        sigma."""
        sigma, nu = self.scale_and_df(aux)
        r = (y - mu) / sigma
        return (nu + 1) * jnp.log1p(r * r / nu)

    def variance(self, mu, aux, trials):
        """sigma^2 df / (df - 2), infinite for df <= 2."""
        sigma, nu = self.scale_and_df(aux)
        ratio = jnp.where(nu > 2, nu / jnp.where(nu > 2, nu - 2, 1.0), jnp.inf)
        return sigma**2 * ratio * jnp.ones_like(mu)

    def log_unit_variance(self, eta, aux, link):
        """The inverse of the location's Fisher information (df + 1) / ((df + 3) sigma^2), so that
        `Family.fisher_weight` is the expected curvature (scoring steps; the Laplace curvature
        is the observed one)."""
        sigma, nu = self.scale_and_df(aux)
        return (2 * jnp.log(sigma) + jnp.log((nu + 3) / (nu + 1))) * jnp.ones_like(eta)

    def distribution(self, mu, aux, trials):
        sigma, nu = self.scale_and_df(aux)
        return dist.StudentT(nu, mu, sigma)


#: Trapezoidal nodes of `normal_expectation`.
QUADRATURE_NODES = np.linspace(-10.0, 10.0, 501)


def normal_expectation(f, eta, v):
    """E[f(eta + e)], e ~ N(0, v), by the trapezoidal rule in z = e / sqrt(v) on [-10, 10] with
    step 0.04 (NumPy). For an integrand analytic in a strip |Im z| < d (g^{-1} of the logit
    link: d = pi / sqrt(v)) its error is ~exp(-2 pi d / 0.04): below 1e-12 for sd(e) up to ~15,
    where 40-node Gauss-Hermite is off by 1e-5 already at sd(e) = 3. f may add trailing axes
    (the cumulative's categories)."""
    z = QUADRATURE_NODES
    weights = np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi) * (z[1] - z[0])
    sd, total = np.sqrt(v), 0.0
    for node, weight in zip(z, weights):
        total = total + weight * np.asarray(f(eta + sd * node))
    return total


def _log1mexp(x):
    """log(1 - exp(x)) for x < 0, stably (Maechler's switch at -log 2)."""
    return jnp.where(x > -np.log(2.0), jnp.log(-jnp.expm1(x)), jnp.log1p(-jnp.exp(x)))


def hurdle_log_prob(y, log_f, log_f0, gate_logits):
    """log p(y) of a hurdle count: log p at 0, log(1 - p) + log f(y) - log(1 - f(0)) above,
    from the count part's log f(y) and log f(0) and p = logit^-1(gate_logits)."""
    positive = log_sigmoid(-gate_logits) + log_f - _log1mexp(log_f0)
    return jnp.where(y == 0, log_sigmoid(gate_logits), positive)


@dataclass(frozen=True)
class _ZeroPart:
    """What the zero-inflated and hurdle wrappers of a count family share: their functions take
    the base's aux and the rows' logit p together (`Family.rows`), the scoring weights are the
    base's (the Laplace curvature is the observed one), and `distribution` gates the base's."""

    base: Family

    def log_unit_variance(self, eta, aux, link):
        return self.base.log_unit_variance(eta, aux[0], link)

    def distribution(self, mu, aux, trials):
        base_aux, zi = aux
        base = self.base.distribution(mu, base_aux, trials)
        return self._gated(base, jnp.broadcast_to(zi, base.batch_shape))


@dataclass(frozen=True)
class Hurdle(_ZeroPart):
    """A hurdle count family (glmmTMB's truncated_poisson / truncated_nbinom2 with ziformula,
    brms's hurdle_*): p(0) = p = logit^-1(X_zi gamma), p(y) = (1 - p) f(y) / (1 - f(0)) for
    y > 0, E[y] = (1 - p) mu / (1 - f(0))."""

    @staticmethod
    def _gated(base, gate_logits):
        from .distributions import HurdleCount

        return HurdleCount(base, gate_logits)

    def _log_f0(self, eta, base_aux, trials, link):
        return self.base.logpdf(jnp.zeros_like(eta), eta, base_aux, trials, link)

    def logpdf(self, y, eta, aux, trials, link):
        base_aux, zi = aux
        log_f = self.base.logpdf(y, eta, base_aux, trials, link)
        return hurdle_log_prob(y, log_f, self._log_f0(eta, base_aux, trials, link), zi)

    def _positive_scale(self, eta, base_aux, zi):
        """(1 - p) / (1 - f(0)), which turns the count part's moments into y's (log link)."""
        log_f0 = self._log_f0(eta, base_aux, 1.0, LINKS["log"])
        return jnp.exp(log_sigmoid(-zi) - _log1mexp(log_f0))

    def variance(self, mu, aux, trials):
        """Var(y) at the count part's mean mu: E[y^2] - E[y]^2 with E[y^k] the count part's
        k-th moment times (1 - p) / (1 - f(0))."""
        base_aux, zi = aux
        scale = self._positive_scale(jnp.log(mu), base_aux, zi)
        second = self.base.variance(mu, base_aux, trials) + mu**2
        return scale * second - (scale * mu) ** 2

    def response_mean(self, eta, v, aux):
        """E[y] given eta, averaged over e ~ N(0, v) of the random effects integrated out."""
        base_aux, zi = aux

        def conditional(e):
            return self._positive_scale(e, base_aux, zi) * jnp.exp(e)

        if np.ndim(v) == 0 and v == 0:
            return conditional(eta)
        return normal_expectation(conditional, eta, v)


@dataclass(frozen=True)
class ZeroInflated(_ZeroPart):
    """A count family with structural zeros of probability p = logit^-1(X_zi gamma) (glmmTMB's
    ziformula, brms's zero_inflated_*): p(0) = p + (1 - p) f(0), p(y) = (1 - p) f(y) for y > 0,
    E[y] = (1 - p) mu. The base's log_norm is 0 at y = 0 (-log 0!), so that f(0) =
    exp(logpdf) there."""

    @staticmethod
    def _gated(base, gate_logits):
        return dist.ZeroInflatedDistribution(base, gate_logits=gate_logits)

    def logpdf(self, y, eta, aux, trials, link):
        base_aux, zi = aux
        log_f = self.base.logpdf(y, eta, base_aux, trials, link)
        log_kept = log_sigmoid(-zi)
        return jnp.where(y == 0, jnp.logaddexp(log_sigmoid(zi), log_kept + log_f), log_kept + log_f)

    def variance(self, mu, aux, trials):
        """Var(y) = (1 - p) (V(mu) + p mu^2) at the count part's mean mu."""
        base_aux, zi = aux
        p = jax.nn.sigmoid(zi)
        return (1 - p) * (self.base.variance(mu, base_aux, trials) + p * mu**2)

    def response_mean(self, eta, v, aux):
        """E[y] = (1 - p) E[mu], E[mu] = exp(eta + v / 2) under the log link."""
        return jax.nn.sigmoid(-aux[1]) * jnp.exp(eta + v / 2)


#: the families `zero_inflated` takes (with the log link)
ZERO_INFLATABLE = ("poisson", "negbinomial")
#: the hurdle families, by the count family of their positive part
HURDLE_FAMILIES = {"hurdle_poisson": "poisson", "hurdle_negbinomial": "negbinomial"}


def zero_inflated(base: Family, hurdle: bool = False) -> Family:
    """`base` (poisson or negbinomial, log link) with zero inflation (`ZeroInflated`), or as the
    positive part of a hurdle model (`Hurdle`); the zero part's formula is the model's zi=."""
    z = Hurdle(base) if hurdle else ZeroInflated(base)
    return dataclasses.replace(
        base,
        name=f"hurdle_{base.name}" if hurdle else base.name,
        logpdf=z.logpdf,
        variance=z.variance,
        unit_deviance=None,  # glmmTMB's has none either: the fit's deviance is -2 log L
        distribution=z.distribution,
        log_unit_variance=z.log_unit_variance,
        links=("log",),
        observed_curvature=True,
        response_mean=z.response_mean,
        base=base,
        zero_model="hurdle" if hurdle else "zero-inflated",
    )


#: |a| beyond which F(a) is 0 or 1 in double precision under the logit and probit links: the
#: open ends of the first and last categories (finite, so that no gradient meets inf - inf)
_OPEN_END = 1e10


@partial(jax.custom_jvp, nondiff_argnums=(2,))
def _log_between(a, b, link: Link):
    """log(F(b) - F(a)) for a < b, F the link's inverse (a symmetric latent cdf: logistic or
    normal), from the lower tail: log F(b) + log(1 - F(a) / F(b)) after reflecting (a, b) to
    (-b, -a) where a + b > 0. Its derivative (f(b) db - f(a) da) / (F(b) - F(a)) is given
    directly (f the latent density), so autodiff never enters log F (log_ndtr)."""
    flip = a + b > 0
    lo, hi = jnp.where(flip, -b, a), jnp.where(flip, -a, b)
    return link.log_mu(hi) + _log1mexp(link.log_mu(lo) - link.log_mu(hi))


@_log_between.defjvp
def _log_between_jvp(link, primals, tangents):
    (a, b), (da, db) = primals, tangents
    out = _log_between(a, b, link)
    return out, jnp.exp(link.log_mu_eta(b) - out) * db - jnp.exp(link.log_mu_eta(a) - out) * da


def _log_interval(a, b, link: Link):
    """log(F(b) - F(a)), -inf where b <= a (thresholds out of order)."""
    ordered = b > a
    b = jnp.where(ordered, b, a + 1.0)  # keeps the branch not taken finite
    return jnp.where(ordered, _log_between(a, b, link), -jnp.inf)


@dataclass(frozen=True)
class Cumulative:
    """The cumulative-link ordinal family (ordinal's clmm, brms's cumulative): a response of K
    ordered categories coded 0, ..., K - 1 with P(y <= k) = F(tau_k - eta), thresholds tau_0 <
    ... < tau_{K-2} in aux (..., K - 1) and eta = X beta + Z b without an intercept. Its
    functions of mu recover eta = g(mu) with the model's link."""

    levels: tuple[str, ...]
    link: Link

    def _eta(self, mu):
        """eta = g(mu), traceable (the functions of mu are given the link's mean)."""
        return jnp.log(mu) - jnp.log1p(-mu) if self.link.name == "logit" else jsp_ndtri(mu)

    def log_probs(self, eta, aux):
        """log P(y = k), k = 0, ..., K - 1, on a last axis (aux broadcast against eta)."""
        cuts = [aux[..., j] - eta for j in range(len(self.levels) - 1)]
        cuts = jnp.broadcast_arrays(*cuts)
        lower = [jnp.full_like(cuts[0], -_OPEN_END), *cuts]
        upper = [*cuts, jnp.full_like(cuts[0], _OPEN_END)]
        return jnp.stack([_log_interval(a, b, self.link) for a, b in zip(lower, upper)], -1)

    def logpdf(self, y, eta, aux, trials, link):
        """log P(y) = log(F(tau_y - eta) - F(tau_{y-1} - eta)), the open ends at +-infinity."""
        last = len(self.levels) - 1
        lower = jnp.where(y == 0, -_OPEN_END, 0.0)
        upper = jnp.where(y == last, _OPEN_END, 0.0)
        for j in range(last):
            lower = lower + jnp.where(y == j + 1, aux[..., j] - eta, 0.0)
            upper = upper + jnp.where(y == j, aux[..., j] - eta, 0.0)
        return _log_interval(lower, upper, self.link)

    def _moments(self, eta, aux):
        p = jnp.exp(self.log_probs(eta, aux))
        k = jnp.arange(len(self.levels), dtype=p.dtype)
        mean = jnp.sum(k * p, axis=-1)
        return mean, jnp.sum(k**2 * p, axis=-1) - mean**2

    def variance(self, mu, aux, trials):
        """Var(y) of the category's code at mu = g^{-1}(eta)."""
        return self._moments(self._eta(mu), aux)[1]

    def response_mean(self, eta, v, aux):
        """E[y], the mean category code, averaged over e ~ N(0, v) of the random effects
        integrated out."""
        if np.ndim(v) == 0 and v == 0:
            return self._moments(eta, aux)[0]
        return normal_expectation(lambda e: self._moments(e, aux)[0], eta, v)

    def distribution(self, mu, aux, trials):
        return dist.Categorical(logits=self.log_probs(self._eta(mu), aux))

    def log_unit_variance(self, eta, aux, link):
        """log V with (dmu/deta)^2 / V the expected information about eta, sum_k (f(c_k) -
        f(c_{k-1}))^2 / P(y = k) (f the latent density, c_k = tau_k - eta): the Fisher weight of
        the fallback steps; the Laplace curvature is the observed one."""
        cuts = jnp.stack(
            jnp.broadcast_arrays(*[aux[..., j] - eta for j in range(len(self.levels) - 1)]), -1
        )
        density = jnp.exp(link.log_mu_eta(cuts))
        zero = jnp.zeros_like(density[..., :1])
        change = jnp.concatenate([density, zero], -1) - jnp.concatenate([zero, density], -1)
        information = jnp.sum(change**2 * jnp.exp(-self.log_probs(eta, aux)), axis=-1)
        return 2 * link.log_mu_eta(eta) - jnp.log(information)


def _threshold_start(j: int, link: Link) -> Callable:
    """The j-th threshold's start: g(P(y <= j)) over the sample."""
    return lambda y, mu: float(link.link(np.clip(np.mean(y <= j), 1e-4, 1 - 1e-4)))


def cumulative_family(levels: tuple[str, ...] = (), link: Link | None = None) -> Family:
    """The cumulative ordinal family for the response's ordered categories `levels` (at least
    3) under `link` (logit or probit): its parameters are the K - 1 thresholds, named as
    ordinal's ("1|2", "2|3", ...), class `threshold`, one ordered sample site; a model builds
    it once it has read the response (without `levels`: the table's entry, for its links)."""
    link = link or LINKS["logit"]
    c = Cumulative(tuple(levels), link)
    thresholds = tuple(
        AuxParameter(
            f"{levels[j]}|{levels[j + 1]}",
            lambda s_y: ("student_t", (3.0, 0.0, 2.5)),  # brms's for the thresholds
            _threshold_start(j, link),
            initial=float(j),
            lower=-np.inf,
            cls="threshold",
        )
        for j in range(len(levels) - 1)
    )
    return Family(
        "cumulative",
        "logit",
        ("logit", "probit"),
        thresholds,
        c.logpdf,
        c.variance,
        None,  # the fit's deviance is -2 log L, as clmm's
        c.distribution,
        lambda y, name: None,  # the codes are made from the categories (`design.model_spec`)
        c.log_unit_variance,
        discrete=True,
        latent_variance=_LATENT,  # the latent error's, as for binomial models
        observed_curvature=True,
        response_mean=c.response_mean,
        categories=tuple(levels),
        category_log_probs=c.log_probs,
    )


def _lognormal_mean(eta, v, aux):
    """E[y] = exp(eta + (v + sigma^2) / 2), with v the variance of the random effects
    integrated out (0 for a conditional prediction)."""
    return jnp.exp(eta + (v + aux**2) / 2)


def _poisson_logpmf(y, eta, aux, trials, link):
    return y * link.log_mu(eta) - link.inverse(eta)


def _negbinomial_logpmf(y, eta, aux, trials, link):
    log_mu = link.log_mu(eta)
    log_sum = jnp.logaddexp(jnp.log(aux), log_mu)
    return gammaln(y + aux) - gammaln(aux) + aux * (jnp.log(aux) - log_sum) + y * (log_mu - log_sum)


def _no_log_norm(y, trials):
    return np.zeros_like(y, dtype=float)


def _binomial_log_norm(y, trials):
    """log C(trials, y)."""
    return special.gammaln(trials + 1) - special.gammaln(y + 1) - special.gammaln(trials - y + 1)


def _log_y_log_norm(y, trials):
    """-log y, the Jacobian of y -> log y."""
    return -np.log(np.asarray(y, dtype=float))


def _count_log_norm(y, trials):
    """-log y!"""
    return -special.gammaln(np.asarray(y, dtype=float) + 1)


def _gamma_logpdf(y, eta, aux, trials, link):
    # in log mu: with the inverse link y / mu = y eta and log mu = -log eta, no 1 / (1 / eta)
    log_mu = link.log_mu(eta)
    return (
        aux * jnp.log(aux)
        - gammaln(aux)
        + (aux - 1) * jnp.log(y)
        - aux * y * jnp.exp(-log_mu)
        - aux * log_mu
    )


def _beta_logpdf(y, eta, aux, trials, link):
    """Beta(mu phi, (1 - mu) phi), mean mu and variance mu (1 - mu) / (1 + phi) (glmmTMB's
    beta_family, brms's beta); log mu and log(1 - mu) from the link, stably."""
    a, b = link.inverse(eta) * aux, (1 - link.inverse(eta)) * aux
    return gammaln(aux) - gammaln(a) - gammaln(b) + (a - 1) * jnp.log(y) + (b - 1) * jnp.log1p(-y)


def _beta_deviance(y, mu, trials, aux):
    """2 (log p(y | mu = y) - log p(y | mu)): the saturated model's log-likelihood ratio."""
    logpdf = lambda m: (  # noqa: E731
        -gammaln(m * aux)
        - gammaln((1 - m) * aux)
        + m * aux * jnp.log(y)
        + (1 - m) * aux * jnp.log1p(-y)
    )
    return 2 * (logpdf(y) - logpdf(mu))


def _beta_binomial_logpmf(y, eta, aux, trials, link):
    """BetaBinomial(trials, mu phi, (1 - mu) phi), without log C(trials, y) (glmmTMB's
    betabinomial: mean trials mu, variance trials mu (1 - mu) (phi + trials) / (phi + 1))."""
    a, b = link.inverse(eta) * aux, (1 - link.inverse(eta)) * aux
    return (
        gammaln(y + a)
        + gammaln(trials - y + b)
        - gammaln(trials + aux)
        - (gammaln(a) + gammaln(b) - gammaln(aux))
    )


def _beta_binomial_deviance(y, mu, trials, aux):
    """2 (log p(y | mu = y / trials) - log p(y | mu)); the saturated term is 0 where y is 0 or
    trials (there mu = y / trials puts all the mass on y)."""
    logp = lambda m: _beta_binomial_logpmf(y, m, aux, trials, LINKS["identity"])  # noqa: E731
    inside = (y > 0) & (y < trials)
    saturated = jnp.where(inside, logp(jnp.where(inside, y / trials, 0.5)), 0.0)
    return 2 * (saturated - logp(mu))


def _binomial_deviance(y, mu, trials, aux):
    return 2 * (xlogy(y, y / (trials * mu)) + xlogy(trials - y, (trials - y) / (trials * (1 - mu))))


def _negbinomial_deviance(y, mu, trials, aux):
    return 2 * (xlogy(y, y / mu) - (y + aux) * jnp.log((y + aux) / (mu + aux)))


def _check_finite(y, name):
    if not np.all(np.isfinite(y)):
        raise DataError(f"response {name!r} has NaN or infinite values")


def _check_counts(y, name):
    if np.any(y < 0) or np.any(y != np.round(y)):
        bad = y[(y < 0) | (y != np.round(y))][0]
        raise DataError(f"response {name!r} must be non-negative whole counts; found {float(bad)}")


def _check_binary(y, name):
    if not np.all((y == 0) | (y == 1)):
        bad = sorted(float(v) for v in set(np.unique(y)) - {0, 1})
        raise DataError(f"bernoulli response {name!r} must be 0/1 (or True/False); found {bad[:5]}")


def _check_positive(y, name):
    if np.any(y <= 0):
        raise DataError(
            f"response {name!r} must be positive for this family; found {float(y[y <= 0][0])}"
        )


def _check_unit_interval(y, name):
    if np.any((y <= 0) | (y >= 1)):
        bad = float(y[(y <= 0) | (y >= 1)][0])
        raise DataError(
            f"beta response {name!r} must lie strictly between 0 and 1; found {bad} "
            "(a proportion with exact 0s or 1s needs another family, e.g. binomial counts)"
        )


def _gaussian_log_variance(eta, aux, link):
    return 2 * jnp.log(aux) * jnp.ones_like(eta)


def _binomial_log_variance(eta, aux, link):
    return link.log_mu(eta) + link.log1m_mu(eta)


def _poisson_log_variance(eta, aux, link):
    return link.log_mu(eta)


def _negbinomial_log_variance(eta, aux, link):
    """log(mu + mu^2 / k) = log mu + log(1 + mu / k)."""
    log_mu = link.log_mu(eta)
    return log_mu + jnp.logaddexp(0.0, log_mu - jnp.log(aux))


def _gamma_log_variance(eta, aux, link):
    return 2 * link.log_mu(eta) - jnp.log(aux)


def _beta_log_variance(eta, aux, link):
    return link.log_mu(eta) + link.log1m_mu(eta) - jnp.log1p(aux)


@dataclass(frozen=True)
class AuxParameter:
    """A family's parameter beside mu (a dispersion parameter, positive, or a threshold): its
    name, which is also its class in the priors unless `cls` says otherwise, its default prior
    as (prior, arguments) given s_y (the response's sd for gaussian models, else 1), where the
    GLM start begins it, and its moment estimate from y and the GLM's fitted mu, which starts
    the Laplace fit. Parameters of one class other than their name are one ordered sample
    site (the cumulative's thresholds)."""

    name: str
    default_prior: Callable  # s_y -> (prior name, arguments)
    moment: Callable  # (y, mu) -> an estimate
    initial: float = 1.0  # before the GLM's mu is known
    lower: float = 0.0  # positive, or -inf (the cumulative's thresholds)
    cls: str | None = None  # its class in the priors where it is not its name


def _residual_sd(y, mu):
    return max(float(np.std(y - mu)), 1e-8 * max(float(np.std(y)), 1e-300))


def _gamma_shape(y, mu):
    return 1.0 / max(float(np.mean(((y - mu) / mu) ** 2)), 1e-6)


def _beta_precision(y, mu):
    """phi from Var(y) = mu (1 - mu) / (1 + phi), by moments."""
    ratio = float(np.mean(mu * (1 - mu))) / max(float(np.mean((y - mu) ** 2)), 1e-12)
    return max(ratio - 1.0, 1e-2)


def _negbinomial_shape(y, mu):
    excess = float(np.mean(((y - mu) ** 2 - mu) / mu**2))
    return 1.0 / excess if excess > 1e-3 else 1e3


SIGMA = AuxParameter("sigma", lambda s_y: ("exponential", (1.0 / s_y,)), _residual_sd)
#: brms's default for the shape of the negative binomial and gamma families.
SHAPE = AuxParameter("shape", lambda s_y: ("gamma", (0.01, 0.01)), _gamma_shape)
#: brms's default for the precision of the beta family
PHI = AuxParameter("phi", SHAPE.default_prior, _beta_precision)
#: the beta-binomial's phi from its GLM start is not a moment of y alone (it needs the
#: trials); the Laplace fit starts it at 10, between binomial-like and strongly overdispersed
BB_PHI = AuxParameter("phi", SHAPE.default_prior, lambda y, mu: 10.0, initial=10.0)
#: the Student-t's degrees of freedom: brms's gamma(2, 0.1) prior (mean 20), started at 10
DF = AuxParameter("df", lambda s_y: ("gamma", (2.0, 0.1)), lambda y, mu: 10.0, initial=10.0)
#: the negative binomial starts as a Poisson (shape -> infinity)
NB_SHAPE = AuxParameter("shape", SHAPE.default_prior, _negbinomial_shape, initial=1e6)


@dataclass(frozen=True)
class Family:
    """One row of the family table. Everything that differs between families is an attribute
    here; code elsewhere asks for the attribute, never for the family's name."""

    name: str
    default_link: str
    links: tuple[str, ...]
    aux: tuple[AuxParameter, ...]  # the family's parameters beside mu
    logpdf: Callable  # (y, eta, aux, trials, link) -> log p - log_norm
    variance: Callable  # (mu, aux, trials) -> Var(y) at the link's mean mu = g^{-1}(eta)
    #: (y, E[y], trials, aux) -> d(y, E[y]); None for the zero-inflated and hurdle families
    unit_deviance: Callable | None
    distribution: Callable  # (mu, aux, trials) -> numpyro distribution
    check_response: Callable  # (y, name) -> None or raises DataError
    log_unit_variance: Callable  # (eta, aux, link) -> log Var(y) per trial
    uses_trials: bool = False
    log_norm: Callable = _no_log_norm  # (y, trials) -> the terms of log p in the data alone
    #: aux is sigma, the sd of y around mu: theta is relative to it (lme4's), the tables have
    #: a Residual row and tests of fixed effects are t tests
    residual_sd: bool = False
    #: the response takes whole values (counts, 0/1): separation can occur, rootograms apply
    discrete: bool = False
    #: the GLM start floors mu here under the log and inverse links
    mean_floor: float = 1e-8
    #: the latent-scale residual variance by link (Nakagawa's R^2 of binomial models)
    latent_variance: tuple[tuple[str, float], ...] = ()
    #: the Laplace approximation's curvature: -d^2 log p / d eta^2 at the mode (glmmTMB's)
    #: rather than the Fisher weight (glmer's, which equals it under a canonical link)
    observed_curvature: bool = False
    #: y -> the scale on which the family's log density is written where that is not y's (the
    #: lognormal's log y): the model's arrays, the GLM start, the parameter scales and the
    #: default priors hold y there, `log_norm` the Jacobian; `distribution` draws y itself
    location: Callable | None = None
    #: (eta, v, aux) -> E[y] where it is not g^{-1}(eta) averaged over the random effects'
    #: variance v (the lognormal's exp(eta + (v + sigma^2) / 2))
    response_mean: Callable | None = None
    #: mu and aux are in y's units (or log y's: the lognormal's): the default priors are
    #: scaled by sd(y) and the Intercept's centred on mean(y), as brms's
    y_units: bool = False
    #: a family parameter fixed by the user, by name (the Student-t's df)
    fixed: tuple[tuple[str, float], ...] = ()
    #: the count family a zero-inflated or hurdle one wraps (`zero_inflated`), else None
    base: Family | None = None
    zero_model: str | None = None  # "zero-inflated" or "hurdle"
    #: the ordered categories of a cumulative family's response (coded 0, ..., K - 1); the
    #: GLM start is then beta = 0 with the thresholds at their moments
    categories: tuple[str, ...] = ()
    #: (eta, aux) -> log P(y = k) on a last axis of the categories (cumulative families)
    category_log_probs: Callable | None = None

    def on_location_scale(self, y):
        """y on the scale of the log density (see `location`)."""
        return y if self.location is None else self.location(np.asarray(y, dtype=float))

    @property
    def aux_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.aux)

    def rows(self, aux, designs):
        """The `aux` this family's functions take on the rows of `designs` (the model's arrays,
        `Rows` or `ModelSpec`: anything with X_disp and X_zi, None where the model has no such
        formula). With a dispersion formula, aux (..., d + ...) starts with its coefficients
        delta and the first parameter (sigma, shape or phi) is exp(X_disp delta) per row; a
        zero-inflated or hurdle family's ends with the coefficients gamma and becomes (the
        base's aux, X_zi gamma). The parameters then take a trailing axis of the rows (their
        own, or 1); without either formula aux is returned as it is."""
        X_disp, X_zi = designs.X_disp, designs.X_zi
        if X_disp is None and self.base is None:
            return aux
        k = len(self.aux)
        d = min(k, 1) if X_disp is None else X_disp.shape[1]
        values = [aux[..., d + j, None] for j in range(k - 1)]
        if k:
            first = (
                aux[..., 0, None]
                if X_disp is None
                else jnp.exp(jnp.einsum("...j,nj->...n", aux[..., :d], X_disp))
            )
            values = jnp.broadcast_arrays(first, *values)
        base = pack_aux(list(values))
        if self.base is None:
            return base
        return base, jnp.einsum("...j,nj->...n", aux[..., d + max(k - 1, 0) :], X_zi)

    def fisher_weight(self, eta, aux, trials, link):
        """w = (d E[y] / d eta)^2 / Var(y) = n exp(2 log|dmu/deta| - log V(mu)): the PIRLS
        weight and the Laplace curvature, taken in logs so that it is finite wherever the
        density is (1 - mu rounds to 0 once eta > 37 under the logit link, where w ~ n
        exp(-eta); (dmu/deta)^2 = eta^-4 under the inverse link overflows long before w =
        shape / eta^2 does)."""
        n = trials if self.uses_trials else 1.0
        return n * jnp.exp(2 * link.log_mu_eta(eta) - self.log_unit_variance(eta, aux, link))


def pack_aux(values, xp=jnp):
    """The `aux` argument of a family's functions from its parameters' values, in the order of
    `Family.aux`: 1.0 without one, the value itself for one, and several stacked on a last
    axis (..., k), which the family's functions index (the Student-t's sigma, df)."""
    if not values:
        return 1.0
    return values[0] if len(values) == 1 else xp.stack(values, axis=-1)


#: a dispersion formula models the first of these families' parameters (sigma, shape, phi)
DISPERSION_FAMILIES = (
    "gaussian",
    "student_t",
    "lognormal",
    "negbinomial",
    "gamma",
    "beta",
    "beta_binomial",
)


def with_dispersion(family: Family) -> Family:
    """`family` with its first parameter exp(X_disp delta) per row (`Family.rows`), as
    glmmTMB's dispformula: a gaussian one is then no longer y = X beta + Z b + sigma e, so
    theta is the absolute factor, the fit Laplace's (exact for the identity link) and the tests
    z tests; the Laplace curvature is the observed one, glmmTMB's."""
    return dataclasses.replace(family, residual_sd=False, observed_curvature=True)


def is_linear_gaussian(family: Family, link: Link) -> bool:
    """y = X beta + Z b + e: REML/ML, exact marginalisation and t tests apply."""
    return family.residual_sd and link.name == "identity"


_LATENT = (("logit", np.pi**2 / 3), ("probit", 1.0), ("cloglog", np.pi**2 / 6))

FAMILIES = {
    "gaussian": Family(
        "gaussian",
        "identity",
        ("identity", "log", "inverse"),
        (SIGMA,),
        _gaussian_logpdf,
        lambda mu, aux, n: aux**2 * jnp.ones_like(mu),
        lambda y, mu, n, aux: (y - mu) ** 2,
        lambda mu, aux, n: dist.Normal(mu, aux),
        _check_finite,
        _gaussian_log_variance,
        residual_sd=True,
        y_units=True,
    ),
    "bernoulli": Family(
        "bernoulli",
        "logit",
        ("logit", "probit", "cloglog"),
        (),
        _binomial_logpmf,
        lambda mu, aux, n: mu * (1 - mu),
        _binomial_deviance,
        lambda mu, aux, n: dist.Binomial(n, probs=mu),
        _check_binary,
        _binomial_log_variance,
        uses_trials=True,
        log_norm=_binomial_log_norm,
        discrete=True,
        latent_variance=_LATENT,
    ),
    "binomial": Family(
        "binomial",
        "logit",
        ("logit", "probit", "cloglog"),
        (),
        _binomial_logpmf,
        lambda mu, aux, n: n * mu * (1 - mu),
        _binomial_deviance,
        lambda mu, aux, n: dist.Binomial(n, probs=mu),
        _check_counts,
        _binomial_log_variance,
        uses_trials=True,
        log_norm=_binomial_log_norm,
        discrete=True,
        latent_variance=_LATENT,
    ),
    "poisson": Family(
        "poisson",
        "log",
        ("log", "identity"),
        (),
        _poisson_logpmf,
        lambda mu, aux, n: mu,
        lambda y, mu, n, aux: 2 * (xlogy(y, y / mu) - (y - mu)),
        lambda mu, aux, n: dist.Poisson(mu),
        _check_counts,
        _poisson_log_variance,
        log_norm=_count_log_norm,
        discrete=True,
        mean_floor=0.1,
    ),
    "negbinomial": Family(
        "negbinomial",
        "log",
        ("log", "identity"),
        (NB_SHAPE,),
        _negbinomial_logpmf,
        lambda mu, aux, n: mu + mu**2 / aux,
        _negbinomial_deviance,
        lambda mu, aux, n: dist.NegativeBinomial2(mu, aux),
        _check_counts,
        _negbinomial_log_variance,
        log_norm=_count_log_norm,
        discrete=True,
        mean_floor=0.1,
    ),
    "gamma": Family(
        "gamma",
        "inverse",
        ("inverse", "log", "identity"),
        (SHAPE,),
        _gamma_logpdf,
        lambda mu, aux, n: mu**2 / aux,
        lambda y, mu, n, aux: -2 * (jnp.log(y / mu) - (y - mu) / mu),
        lambda mu, aux, n: dist.Gamma(aux, aux / mu),
        _check_positive,
        _gamma_log_variance,
    ),
    # a gaussian model of log y (the Jacobian -log y in log_norm): REML, ML, the exact
    # marginalisation and t tests apply on that scale
    "lognormal": Family(
        "lognormal",
        "identity",
        ("identity",),
        (SIGMA,),
        _gaussian_logpdf,
        # at mu = E[log y]: (exp(sigma^2) - 1) exp(2 mu + sigma^2)
        lambda mu, aux, n: jnp.expm1(aux**2) * jnp.exp(2 * mu + aux**2),
        # (log y - E[log y])^2 with E[log y] = log E[y] - sigma^2 / 2
        lambda y, m, n, aux: (jnp.log(y) - jnp.log(m) + aux**2 / 2) ** 2,
        lambda mu, aux, n: dist.LogNormal(mu, aux),
        _check_positive,
        _gaussian_log_variance,
        log_norm=_log_y_log_norm,
        residual_sd=True,
        y_units=True,
        location=np.log,
        response_mean=_lognormal_mean,
    ),
    "beta_binomial": Family(
        "beta_binomial",
        "logit",
        ("logit", "probit", "cloglog"),
        (BB_PHI,),
        _beta_binomial_logpmf,
        lambda mu, aux, n: n * mu * (1 - mu) * (aux + n) / (aux + 1),
        _beta_binomial_deviance,
        lambda mu, aux, n: dist.BetaBinomial(mu * aux, (1 - mu) * aux, n),
        _check_counts,
        # the binomial's (phi -> infinity): the GLM start's and the fallback steps' weights;
        # the Laplace curvature is the observed one
        _binomial_log_variance,
        uses_trials=True,
        log_norm=_binomial_log_norm,
        discrete=True,
        observed_curvature=True,
    ),
    "beta": Family(
        "beta",
        "logit",
        ("logit", "probit", "cloglog"),
        (PHI,),
        _beta_logpdf,
        lambda mu, aux, n: mu * (1 - mu) / (1 + aux),
        _beta_deviance,
        lambda mu, aux, n: dist.Beta(mu * aux, (1 - mu) * aux),
        _check_unit_interval,
        _beta_log_variance,
        observed_curvature=True,
    ),
}
_ALIASES = {
    "normal": "gaussian",
    "negative_binomial": "negbinomial",
    "negbin": "negbinomial",
    "nb": "negbinomial",
    "neg_binomial": "negbinomial",
    "logistic": "bernoulli",
    "betabinomial": "beta_binomial",
    "t": "student_t",
    "studentt": "student_t",
    "ordinal": "cumulative",
}


def student_t_family(df=None) -> Family:
    """The Student-t family: location mu (identity, log or inverse link), scale `sigma` and
    `df` estimated (None) or fixed (a positive number). Its Laplace curvature is the observed
    one (glmmTMB's), which is negative for rows with |y - mu| > sqrt(df) sigma."""
    if df is not None and (
        isinstance(df, bool) or not isinstance(df, int | float) or not np.isfinite(df) or df <= 0
    ):
        raise FamilyError(f"df must be a positive number, got {df!r}")
    t = StudentT(None if df is None else float(df))
    return Family(
        "student_t",
        "identity",
        ("identity", "log", "inverse"),
        (SIGMA, DF) if df is None else (SIGMA,),
        t.logpdf,
        t.variance,
        t.unit_deviance,
        t.distribution,
        _check_finite,
        t.log_unit_variance,
        observed_curvature=True,
        y_units=True,
        fixed=() if df is None else (("df", float(df)),),
    )


#: families built per model from a parameter the user may fix (df=)
FIXED_PARAMETER_FAMILIES = {"student_t": student_t_family}
#: families built per model from the response's categories (`design.model_spec`)
CATEGORICAL_FAMILIES = {"cumulative": cumulative_family}


def resolve_family(family: str, link: str | None, df=None) -> tuple[Family, Link]:
    """Look up a family and link by name (with the Student-t's `df`); a wrong combination is a
    `FamilyError`."""
    if not isinstance(family, str):
        raise FamilyError(f"family must be a name such as 'gaussian', got {family!r}")
    key = _ALIASES.get(family.lower(), family.lower())
    if df is not None and key not in FIXED_PARAMETER_FAMILIES:
        raise FamilyError(f"df= applies to family 'student_t', not {key!r}")
    if key in FIXED_PARAMETER_FAMILIES:
        fam = FIXED_PARAMETER_FAMILIES[key](df)
    elif key in HURDLE_FAMILIES:
        fam = zero_inflated(FAMILIES[HURDLE_FAMILIES[key]], hurdle=True)
    elif key in CATEGORICAL_FAMILIES:
        fam = CATEGORICAL_FAMILIES[key]()
    elif key in FAMILIES:
        fam = FAMILIES[key]
    else:
        known = ", ".join(
            [*FAMILIES, *FIXED_PARAMETER_FAMILIES, *HURDLE_FAMILIES, *CATEGORICAL_FAMILIES]
        )
        raise FamilyError(f"unknown family {family!r}; known: {known}")
    link_name = fam.default_link if link is None else str(link).lower()
    if link_name not in LINKS:
        raise FamilyError(f"unknown link {link!r}; known: {', '.join(LINKS)}")
    if link_name not in fam.links:
        raise FamilyError(
            f"link {link_name!r} is not available for family {fam.name!r}; "
            f"use one of {', '.join(fam.links)}"
        )
    return fam, LINKS[link_name]
