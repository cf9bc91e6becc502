"""Make the simulated datasets in data/ (run from this folder: python simulate_data.py).

Each reproduces a shape on which a fit once failed silently; lme4's answers on them are in
lme4_trust.json (lme4_trust.R). The CSVs are frozen so that the tests do not depend on
numpy's random streams.
"""

import numpy as np
import pandas as pd
from scipy.special import ndtr


def ticks_like(seed: int) -> pd.DataFrame:
    """grouseticks-shaped overdispersed counts: 403 rows, 118 broods in 63 locations, one
    level of INDEX per row, height ranging -59..71, a three-level year factor."""
    rng = np.random.default_rng(seed)
    n_loc, n_brood, n = 63, 118, 403
    brood_loc = rng.integers(0, n_loc, n_brood)
    brood = np.sort(np.concatenate([np.arange(n_brood), rng.integers(0, n_brood, n - n_brood)]))
    loc = brood_loc[brood]
    height = rng.uniform(-59, 71, n_loc)[loc]
    year = rng.choice(["95", "96", "97"], n_brood)[brood]
    eta = (
        0.4
        + np.where(year == "96", 1.2, np.where(year == "97", -1.0, 0.0))
        - 0.025 * height
        + rng.normal(0, 1.2, n_loc)[loc]
        + rng.normal(0, 0.6, n_brood)[brood]
        + rng.normal(0, 0.5, n)
    )
    return pd.DataFrame(
        {
            "TICKS": rng.poisson(np.exp(eta)),
            "YEAR": year,
            "HEIGHT": height,
            "BROOD": brood.astype(str),
            "LOCATION": loc.astype(str),
            "INDEX": np.arange(n).astype(str),
        }
    )


def growth(seed: int, n_id: int = 30, n_t: int = 6) -> pd.DataFrame:
    """Quadratic growth curves with correlated random intercept, slope and curvature; the
    curvature's sd is small, so optimiser paths touch the boundary of theta."""
    rng = np.random.default_rng(seed)
    t = np.tile(np.arange(n_t, dtype=float), n_id)
    ids = np.repeat(np.arange(n_id), n_t)
    factor = np.array([[2.0, 0, 0], [0.3, 0.8, 0], [-0.05, -0.1, 0.08]])
    b = rng.normal(size=(n_id, 3)) @ factor.T
    y = (
        10
        + 1.5 * t
        - 0.1 * t**2
        + b[ids, 0]
        + b[ids, 1] * t
        + b[ids, 2] * t**2
        + rng.normal(0, 1.0, len(t))
    )
    return pd.DataFrame({"y": y, "t": t, "t2": t**2, "id": ids.astype(str)}).round(6)


def crossed(seed: int, na: int = 12, nb: int = 8, reps: int = 2) -> pd.DataFrame:
    """Two crossed scalar terms with a small residual sd."""
    rng = np.random.default_rng(seed)
    a = np.repeat(np.arange(na), nb * reps)
    b = np.tile(np.repeat(np.arange(nb), reps), na)
    x = rng.normal(size=a.size)
    y = (
        2
        + 0.5 * x
        + rng.normal(0, 1.0, na)[a]
        + rng.normal(0, 0.5, nb)[b]
        + rng.normal(0, 0.3, a.size)
    )
    return pd.DataFrame({"y": y, "x": x, "a": a.astype(str), "b": b.astype(str)}).round(6)


def serial(seed: int, n_id: int = 40) -> pd.DataFrame:
    """Unbalanced longitudinal data with serially correlated errors: 4 to 12 visits per id at
    unequally spaced times in [0, 10], continuous-time AR(1) errors (phi = 0.6 per unit time),
    a residual sd twice as large for sex "M" as for "F", a random intercept and slope, and
    positive prior weights `w` in [0.5, 2]; `visit` numbers the visits 1, 2, ... within id, with
    every third visit number skipped after the first gap (integer times with gaps for AR1)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_id):
        k = int(rng.integers(4, 13))
        time = np.sort(rng.uniform(0, 10, k))
        visit = np.arange(1, k + 1) + np.arange(k) // 3
        sex = "M" if i % 2 else "F"
        sd = 2.0 if sex == "M" else 1.0
        e = np.empty(k)
        e[0] = rng.normal(0, sd)
        for t in range(1, k):
            r = 0.6 ** (time[t] - time[t - 1])
            e[t] = r * e[t - 1] + rng.normal(0, sd * np.sqrt(1 - r**2))
        b0, b1 = rng.normal(0, 1.5), rng.normal(0, 0.3)
        x = rng.normal(size=k)
        y = 5 + 0.8 * time + 1.0 * x + b0 + b1 * time + e
        rows.append(
            pd.DataFrame(
                {
                    "y": y,
                    "time": time,
                    "visit": visit,
                    "x": x,
                    "sex": sex,
                    "w": rng.uniform(0.5, 2, k),
                    "id": f"s{i:02d}",
                }
            )
        )
    return pd.concat(rows, ignore_index=True).round(6)


def gamma_counts(seed: int, n: int = 300, n_g: int = 20) -> pd.DataFrame:
    """Positive responses for a Gamma GLMM with the inverse (canonical) link, 20 groups:
    `y_inverse` has mean 1 / (1 + 0.3 x + b), b ~ N(0, 0.2^2), shape 3; `y_log` has mean
    exp(0.3 + 0.5 x + b), b ~ N(0, 0.5^2), shape 3, so that the GLM start of an inverse-link
    fit gives eta < 0 in some rows."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, n_g, n)
    x = rng.normal(size=n)
    mean_log = np.exp(0.3 + 0.5 * x + rng.normal(0, 0.5, n_g)[g])
    mean_inverse = 1 / (1.0 + 0.3 * x + rng.normal(0, 0.2, n_g)[g])
    return pd.DataFrame(
        {
            "y_inverse": rng.gamma(3, mean_inverse / 3),
            "y_log": rng.gamma(3, mean_log / 3),
            "x": x,
            "g": [f"g{i:02d}" for i in g],
        }
    ).round(6)


def families(seed: int, n: int = 400, n_g: int = 30) -> pd.DataFrame:
    """One design, a response per family and link: eta = -0.2 + 0.7 x + 0.4 z + b_g + s_g x,
    b ~ N(0, 0.6^2), s ~ N(0, 0.3^2), 30 groups; Bernoulli responses through the logit, probit
    and cloglog links, binomial successes `k` of `n` trials, Poisson counts with and without
    an exposure `t` (mean t exp(eta)), negative binomial counts (shape 1.5, mean exp(eta + 1))."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, n_g, n)
    x, z = rng.normal(size=n), rng.uniform(-1, 1, n)
    eta = -0.2 + 0.7 * x + 0.4 * z + rng.normal(0, 0.6, n_g)[g] + rng.normal(0, 0.3, n_g)[g] * x
    p = 1 / (1 + np.exp(-eta))
    trials = rng.integers(1, 20, n)
    t = rng.uniform(1, 5, n).round(6)
    k = rng.binomial(trials, p)
    return pd.DataFrame(
        {
            "g": [f"g{i:02d}" for i in g],
            "x": x.round(6),
            "z": z.round(6),
            "t": t,
            "logit": (rng.random(n) < p).astype(int),
            "probit": (rng.random(n) < ndtr(eta)).astype(int),
            "cloglog": (rng.random(n) < 1 - np.exp(-np.exp(eta - 0.5))).astype(int),
            "k": k,
            "fail": trials - k,
            "counts": rng.poisson(np.exp(eta + 1)),
            "exposed": rng.poisson(t * np.exp(eta)),
            "nb": rng.negative_binomial(1.5, 1.5 / (1.5 + np.exp(eta + 1))),
        }
    )


def proportions(seed: int, n_g: int = 25, n_per: int = 12) -> pd.DataFrame:
    """Beta responses (issue 30) on one design: y_logit with a random intercept per group,
    y_probit with correlated random intercepts and slopes in x; precision phi 8 and 15."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_g), n_per)
    x = rng.normal(size=g.size)
    b = rng.normal(size=(n_g, 2)) @ np.array([[0.6, 0.0], [0.1, 0.25]]).T
    mu_logit = 1 / (1 + np.exp(-(-0.4 + 0.8 * x + b[g, 0])))
    mu_probit = ndtr(0.3 - 0.3 * x + 0.6 * b[g, 0] + b[g, 1] * x)
    return pd.DataFrame(
        {
            "y_logit": rng.beta(mu_logit * 8, (1 - mu_logit) * 8),
            "y_probit": rng.beta(mu_probit * 15, (1 - mu_probit) * 15),
            "x": x,
            "g": [f"g{i:02d}" for i in g],
        }
    ).round(8)


def overdispersed_trials(seed: int, n_g: int = 30, n_per: int = 8) -> pd.DataFrame:
    """Beta-binomial successes of 5 to 20 trials (issue 30): logit mean with a random
    intercept and slope in x per group, precision phi 6 (about 1.5 to 3 times the binomial's
    variance)."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_g), n_per)
    x = rng.normal(size=g.size)
    trials = rng.integers(5, 21, g.size)
    b = rng.normal(size=(n_g, 2)) * np.array([0.7, 0.3])
    mu = 1 / (1 + np.exp(-(0.2 + 0.6 * x + b[g, 0] + b[g, 1] * x)))
    k = rng.binomial(trials, rng.beta(mu * 6, (1 - mu) * 6))
    return pd.DataFrame(
        {"k": k, "fail": trials - k, "x": x.round(6), "g": [f"g{i:02d}" for i in g]}
    )


def continuous(seed: int, n_g: int = 24, n_per: int = 10) -> pd.DataFrame:
    """Positive and heavy-tailed responses (issue 30) on one design: y_lognormal with log y ~
    N(1 + 0.4 x + b, 0.5^2), correlated random intercepts and slopes in x (sds 0.5, 0.2,
    correlation 0.4); y_t = 2 + 0.5 x + b + 0.8 t_4, a random intercept of sd 1."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_g), n_per)
    x = rng.normal(size=g.size)
    b = rng.normal(size=(n_g, 2)) @ np.array([[0.5, 0.0], [0.08, 0.183]]).T
    log_y = 1 + 0.4 * x + b[g, 0] + b[g, 1] * x + rng.normal(0, 0.5, g.size)
    y_t = 2 + 0.5 * x + rng.normal(0, 1.0, n_g)[g] + 0.8 * rng.standard_t(4, g.size)
    return pd.DataFrame(
        {"y_lognormal": np.exp(log_y), "y_t": y_t, "x": x, "g": [f"g{i:02d}" for i in g]}
    ).round(8)


def zero_inflated_counts(seed: int, n_g: int = 30, n_per: int = 10) -> pd.DataFrame:
    """Zero-inflated negative-binomial counts (issue 30): log mu = 0.8 + 0.5 x + b with
    correlated random intercepts and slopes in x per group (sds 0.6, 0.3, correlation -0.3),
    shape 2; structural zeros with logit p = -1 + 0.8 z."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_g), n_per)
    x, z = rng.normal(size=g.size), rng.normal(size=g.size)
    b = rng.normal(size=(n_g, 2)) @ np.array([[0.6, 0.0], [-0.09, 0.286]]).T
    mu = np.exp(0.8 + 0.5 * x + b[g, 0] + b[g, 1] * x)
    counts = rng.poisson(rng.gamma(2.0, mu / 2.0))
    zero = rng.uniform(size=g.size) < 1 / (1 + np.exp(-(-1 + 0.8 * z)))
    return pd.DataFrame(
        {"y": np.where(zero, 0, counts), "x": x, "z": z, "g": [f"g{i:02d}" for i in g]}
    ).round(8)


def heteroscedastic(seed: int, n_g: int = 30, n_per: int = 12) -> pd.DataFrame:
    """Responses whose dispersion depends on covariates (issue 30), one design: x ~ N(0, 1), f
    in {a, b}, a random intercept of sd 0.6 per group g. log sigma, log shape and log phi are
    linear in f and x:
        y_gaussian  1 + 0.5 x + b + sigma e,        log sigma = -0.3 + 0.6 [f = b] + 0.3 x
        y_t         2 + 0.5 x + b + sigma t_5,      log sigma = -0.5 + 0.5 [f = b]
        y_nb        NB(exp(1 + 0.4 x + b), shape),  log shape = 0.5 + 1.0 [f = b]
        y_gamma     Gamma(mean exp(1 + 0.3 x + b), shape), log shape = 1 + 0.7 [f = b]
        y_beta      Beta(mean logit^-1(-0.3 + 0.6 x + b), phi), log phi = 2 + 0.8 x."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_g), n_per)
    x = rng.normal(size=g.size)
    fb = rng.integers(0, 2, g.size)
    b = lambda: rng.normal(0, 0.6, n_g)[g]
    y_gaussian = 1 + 0.5 * x + b() + np.exp(-0.3 + 0.6 * fb + 0.3 * x) * rng.normal(size=g.size)
    y_t = 2 + 0.5 * x + b() + np.exp(-0.5 + 0.5 * fb) * rng.standard_t(5, g.size)
    mu, shape = np.exp(1 + 0.4 * x + b()), np.exp(0.5 + 1.0 * fb)
    y_nb = rng.poisson(rng.gamma(shape, mu / shape))
    mu, shape = np.exp(1 + 0.3 * x + b()), np.exp(1 + 0.7 * fb)
    y_gamma = rng.gamma(shape, mu / shape)
    mu, phi = 1 / (1 + np.exp(-(-0.3 + 0.6 * x + b()))), np.exp(2 + 0.8 * x)
    y_beta = np.clip(rng.beta(mu * phi, (1 - mu) * phi), 1e-6, 1 - 1e-6)
    return pd.DataFrame(
        {
            "y_gaussian": y_gaussian,
            "y_t": y_t,
            "y_nb": y_nb,
            "y_gamma": y_gamma,
            "y_beta": y_beta,
            "x": x,
            "f": np.where(fb == 1, "b", "a"),
            "g": [f"g{i:02d}" for i in g],
        }
    ).round(8)


def ordinal(seed: int, n_g: int = 40, n_h: int = 8, n_per: int = 10) -> pd.DataFrame:
    """Ordered categories 1-5 (issue 30): latent 0.8 x - 0.6 [f = b] + b_g + c_h + logistic
    error, cut at -2, -0.5, 0.6, 2; a random intercept of sd 0.8 per group g crossed with one of
    sd 0.4 per h; y_probit the same with a standard normal error."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_g), n_per)
    h = rng.integers(0, n_h, g.size)
    x, fb = rng.normal(size=g.size), rng.integers(0, 2, g.size)
    mean = 0.8 * x - 0.6 * fb + rng.normal(0, 0.8, n_g)[g] + rng.normal(0, 0.4, n_h)[h]
    cuts = np.array([-2.0, -0.5, 0.6, 2.0])
    return pd.DataFrame(
        {
            "y": 1 + np.searchsorted(cuts, mean + rng.logistic(size=g.size)),
            "y_probit": 1 + np.searchsorted(cuts, mean + rng.normal(size=g.size)),
            "x": x,
            "f": np.where(fb == 1, "b", "a"),
            "g": [f"g{i:02d}" for i in g],
            "h": [f"h{i}" for i in h],
        }
    ).round(8)


if __name__ == "__main__":
    ticks_like(1).to_csv("data/ticks_sim.csv", index=False)
    growth(12).to_csv("data/growth_sim.csv", index=False)
    growth(15).to_csv("data/growth_sim2.csv", index=False)
    crossed(0).to_csv("data/crossed_sim.csv", index=False)
    serial(3).to_csv("data/serial_sim.csv", index=False)
    gamma_counts(1).to_csv("data/gamma_sim.csv", index=False)
    families(11).to_csv("data/families_sim.csv", index=False)
    proportions(30).to_csv("data/proportions_sim.csv", index=False)
    overdispersed_trials(31).to_csv("data/trials_sim.csv", index=False)
    continuous(32).to_csv("data/continuous_sim.csv", index=False)
    zero_inflated_counts(33).to_csv("data/zero_inflated_sim.csv", index=False)
    heteroscedastic(34).to_csv("data/dispersion_sim.csv", index=False)
    ordinal(35).to_csv("data/ordinal_sim.csv", index=False)
