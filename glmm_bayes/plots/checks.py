"""Model-checking plots for any fit (FrequentistFit or Posterior), each returning its Figure.

Residuals are Pearson residuals (y - E[y]) / sqrt(Var(y)) at the conditional fit (for a posterior,
at the posterior mean of E[y]); random effects are the conditional modes with their conditional
sds (frequentist) or posterior means and sds. Nothing is shown or saved: the caller decides.
"""

from __future__ import annotations

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from scipy import stats
from scipy.stats import gaussian_kde

from ..errors import ModelError, level_argument
from ..families import is_linear_gaussian
from ..results.posterior import idata_name
from .density import bounded_density, parameter_bounds


def _grid(n_panels: int, ncols: int, width: float = 3.6, height: float = 3.0, share: bool = False):
    ncols = max(1, min(ncols, n_panels))
    nrows = int(np.ceil(n_panels / ncols))
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(width * ncols, height * nrows),
        squeeze=False,
        sharex=share,
        sharey=share,
    )
    for ax in axes.flat[n_panels:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n_panels])


def _point_prediction(fit, **kwargs) -> np.ndarray:
    """`fit.predict(**kwargs)`'s prediction, averaged over the draws for a posterior."""
    if fit.spec.family.categories and kwargs.get("scale") != "link":
        raise ModelError(
            "a cumulative model predicts a probability per category, not one mean to take "
            "residuals from: check it with plot_ppc(posterior), bars of the categories"
        )
    prediction = fit.predict(**kwargs)
    if fit.kind == "frequentist":
        return prediction["prediction"].to_numpy()
    return np.asarray(prediction).mean(axis=0)


def _in_response_units(fit, mu: np.ndarray) -> np.ndarray:
    """E[y] from the predicted mean (binomial counts: trials x probability)."""
    return mu * fit.spec.trials if fit.spec.family.uses_trials else mu


def fitted_mean(fit) -> np.ndarray:
    """E[y_i | b] at the fit: the estimate, or the posterior mean, in the response's units."""
    return _in_response_units(fit, _point_prediction(fit))


def pearson_residuals(fit) -> np.ndarray:
    """(y - E[y]) / sd(y), with Var(y) the family's at the link's mean g^{-1}(eta) (E[y] itself
    but for the lognormal, zero-inflated and hurdle families)."""
    spec, family = fit.spec, fit.spec.family
    expected = _point_prediction(fit)
    mu = (
        expected
        if family.response_mean is None
        else np.asarray(spec.link.inverse(_point_prediction(fit, scale="link")))
    )
    aux = fit.model.parameters.aux_from_sites(fit.population["estimate"], np)
    aux = family.rows(aux, spec)
    variance = np.asarray(family.variance(mu, aux, spec.trials))
    return (spec.y - _in_response_units(fit, expected)) / np.sqrt(variance)


def plot_residuals(fit) -> Figure:
    """Pearson residuals against fitted values, and their normal QQ plot."""
    resid, fitted = pearson_residuals(fit), fitted_mean(fit)
    fig, (left, right) = _grid(2, 2)
    left.scatter(fitted, resid, s=10, alpha=0.7)
    left.axhline(0, color="grey", linestyle="--")
    left.set(xlabel="fitted", ylabel="Pearson residual", title="Residuals vs fitted")
    _qq(right, resid, "Normal QQ of residuals")
    fig.tight_layout()
    return fig


def _qq(ax, values, title: str) -> None:
    (theoretical, ordered), (slope, intercept, _) = stats.probplot(values)
    ax.scatter(theoretical, ordered, s=10, alpha=0.7)
    ax.plot(theoretical, intercept + slope * theoretical, color="grey", linestyle="--")
    ax.set(xlabel="normal quantile", ylabel="sample quantile", title=title)


def _effects(fit) -> list[tuple[str, str, pd.Series, pd.Series]]:
    """(factor, column, values, sds) for every column of every random-effect term."""
    out = []
    for factor, table in fit.ranef.items():
        for column in table["condval"].columns:
            out.append((factor, column, table["condval"][column], table["condsd"][column]))
    return out


def plot_ranef_qq(fit, ncols: int = 3) -> Figure:
    """A normal QQ plot of each random effect's values over the levels of its factor."""
    effects = _effects(fit)
    fig, axes = _grid(len(effects), ncols)
    for ax, (factor, column, values, _) in zip(axes, effects):
        _qq(ax, values.to_numpy(), f"{column} | {factor}")
    fig.tight_layout()
    return fig


def plot_caterpillar(
    fit, factor: str | None = None, level: float = 0.95, max_labels: int = 60
) -> Figure:
    """Each level's random effect with its `level` interval (normal, from the conditional or
    posterior sd), sorted, one panel per column of the factor's terms."""
    effects = [e for e in _effects(fit) if factor is None or e[0] == factor]
    if not effects:
        raise ModelError(f"no grouping factor {factor!r}; factors are {list(fit.ranef)}")
    crit = stats.norm.ppf(0.5 + level_argument("level", level) / 2)
    n_levels = max(len(e[2]) for e in effects)
    fig, axes = _grid(
        len(effects), len(effects), width=3.6, height=max(3.0, 0.14 * min(n_levels, 200))
    )
    for ax, (fac, column, values, sds) in zip(axes, effects):
        order = np.argsort(values.to_numpy())
        y = np.arange(len(values))
        ax.errorbar(
            values.to_numpy()[order],
            y,
            xerr=crit * sds.to_numpy()[order],
            fmt="o",
            markersize=3,
            elinewidth=1,
        )
        ax.axvline(0, color="grey", linestyle="--")
        if len(values) <= max_labels:
            ax.set_yticks(y, values.index.to_numpy()[order], fontsize=7)
        else:
            ax.set_yticks([])
        ax.set(title=f"{column} | {fac}", xlabel="random effect")
    fig.tight_layout()
    return fig


def plot_group_fits(
    fit, x: str, group: str | None = None, max_groups: int = 30, ncols: int = 6
) -> Figure:
    """The lattice view: one panel per level of `group` (default: the first grouping factor)
    with the observed responses against column `x`, the conditional fit (solid) and the
    population fit (dashed)."""
    spec = fit.spec
    group = group or spec.terms[0].factor
    if x not in spec.data.columns:
        raise ModelError(
            f"no column {x!r} in the model's data; columns are {list(spec.data.columns)}"
        )
    if group not in {t.factor for t in spec.terms}:
        raise ModelError(
            f"no grouping factor {group!r}; factors are {sorted({t.factor for t in spec.terms})}"
        )
    term = next(t for t in spec.terms if t.factor == group)
    observed = spec.y / spec.trials if spec.family.uses_trials else spec.y
    conditional, population = _point_prediction(fit), _point_prediction(fit, re_form="~0")
    levels = term.levels[:max_groups]
    fig, axes = _grid(len(levels), ncols, width=2.4, height=2.2, share=True)
    xs = spec.data[x].to_numpy()
    for ax, (k, lev) in zip(axes, enumerate(levels)):
        rows = np.flatnonzero(term.level_index == k)
        rows = rows[np.argsort(xs[rows], kind="stable")]
        ax.scatter(xs[rows], observed[rows], s=8, label="observed")
        ax.plot(xs[rows], conditional[rows], color="C1", label=f"this {group} (with its b)")
        ax.plot(
            xs[rows], population[rows], color="grey", linestyle="--", label="population (b = 0)"
        )
        ax.set_title(f"{group} {lev}", fontsize=9)
        ax.tick_params(labelsize=8)
    fig.supxlabel(x)
    fig.supylabel(spec.response_name)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    return fig


def plot_ppc(fit, n: int = 50, seed: int = 0, kind: str = "lines") -> Figure:
    """Observed responses against n replicated data sets from the fit, conditional on the random
    effects (a posterior predictive check for posteriors; a parametric one for point fits).

    kind="lines": densities for continuous responses, frequencies of each value for counts;
    kind="rootogram" (counts): a hanging rootogram (Kleiber and Zeileis 2016), a bar of
    sqrt(observed frequency) for each value hanging from the curve of sqrt(expected frequency),
    the mean over the replicates, so that a bar ending above or below zero marks a value the
    model under- or over-predicts."""
    if kind not in ("lines", "rootogram"):
        raise ModelError(f"kind must be 'lines' or 'rootogram', not {kind!r}")
    discrete = fit.spec.family.discrete
    if kind == "rootogram" and not discrete:
        raise ModelError(
            f"a rootogram needs a count response; the family is {fit.spec.family.name!r}"
        )
    sims = fit.simulate(n, seed=seed, re_form=None).to_numpy()
    y = fit.spec.y
    fig, (ax,) = _grid(1, 1, width=5.5, height=3.5)
    source = "Posterior" if fit.kind == "bayesian" else "Parametric"
    if discrete:
        values = np.arange(0, int(max(y.max(), np.quantile(sims, 0.99))) + 1)

        def frequencies(counts):
            return np.bincount(counts.astype(int), minlength=len(values))[: len(values)]

        replicated = np.stack([frequencies(s) for s in sims.T])
        if kind == "rootogram":
            top = np.sqrt(replicated.mean(axis=0))
            ax.bar(values, np.sqrt(frequencies(y)), bottom=top - np.sqrt(frequencies(y)),
                   color="lightgrey", edgecolor="k", label="observed (hanging)")  # fmt: skip
            ax.plot(values, top, color="C0", marker="o", label=f"expected ({n} replicates)")
            ax.axhline(0.0, color="k", linewidth=0.8)
            ax.set(xlabel=fit.spec.response_name, ylabel="sqrt(frequency)")
            ax.legend(fontsize=8)
            ax.set_title(f"Hanging rootogram ({source.lower()} predictive)")
            fig.tight_layout()
            return fig
        for r in replicated:
            ax.plot(values, r, color="C0", alpha=0.15)
        ax.plot(values, frequencies(y), color="k", marker="o", label="observed")
        ax.set(xlabel=fit.spec.response_name, ylabel="count")
    else:
        grid = np.linspace(min(y.min(), sims.min()), max(y.max(), sims.max()), 200)
        for s in sims.T:
            ax.plot(grid, gaussian_kde(s)(grid), color="C0", alpha=0.15)
        ax.plot(grid, gaussian_kde(y)(grid), color="k", label="observed")
        ax.set(xlabel=fit.spec.response_name, ylabel="density")
    ax.plot([], [], color="C0", label=f"{n} replicated")
    ax.legend(fontsize=8)
    ax.set_title(f"{source} predictive check")
    fig.tight_layout()
    return fig


def plot_prior_posterior(post, parameters=None, draws: int = 4000, seed: int = 0) -> Figure:
    """Each population parameter's prior density (draws from `post.model.sample_prior`) over
    its posterior density, one panel per parameter on the posterior's range, so that a
    posterior that is the prior again (data that say little) shows at a glance."""
    if post.kind != "bayesian":
        raise ModelError("plot_prior_posterior needs a posterior (from sample or fit_map)")
    population = post.population_draws()
    names = list(population) if parameters is None else list(parameters)
    unknown = [n for n in names if n not in population]
    if unknown:
        raise ModelError(f"no parameters {unknown}; the posterior has {list(population)}")
    prior = post.model.sample_prior(draws=draws, seed=seed)["prior"]
    bounds = parameter_bounds(post)
    fig, axes = _grid(len(names), 3, width=3.4, height=2.6)
    for ax, name in zip(axes, names):
        after = np.ravel(population[name])
        lo, hi = np.quantile(after, [0.001, 0.999])
        span = (lo - 0.5 * (hi - lo), hi + 0.5 * (hi - lo))
        before = np.ravel(prior[idata_name(name)].values)
        for draws, style in ((before, dict(color="grey", linestyle="--", label="prior")),
                             (after, dict(color="C0", label="posterior"))):  # fmt: skip
            ax.plot(*bounded_density(draws, bounds[name], span=span), **style)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.set_yticks([])
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", ncol=2, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    return fig


def _population_tree(post):
    """The population draws, a variable per parameter; "/" (as in "CrossR/R"), which DataTree
    variable names cannot hold, is shown as the look-alike division slash U+2215."""
    data = xr.Dataset(
        {
            idata_name(name): (("chain", "draw"), np.asarray(v))
            for name, v in post.population_draws().items()
        }
    )
    return xr.DataTree.from_dict({"posterior": data})


def _arviz_figure(collection) -> Figure:
    artist = next(iter(collection.viz["plot"].dataset.data_vars.values())).values
    return np.ravel(artist)[0].figure


def plot_trace(post) -> Figure:
    """Trace and marginal density per chain of every population parameter (ArviZ)."""
    return _arviz_figure(az.plot_trace_dist(_population_tree(post), backend="matplotlib"))


def plot_rank(post) -> Figure:
    """Rank plots per chain of every population parameter (ArviZ): uniform when chains mix."""
    return _arviz_figure(az.plot_rank(_population_tree(post), backend="matplotlib"))


def plot_shrinkage(fit, factor: str | None = None) -> Figure:
    """Per-group least-squares coefficients (no pooling) against the mixed model's beta + b for
    the columns of `factor`'s terms (gaussian models): arrows show the shrinkage towards the
    population estimate (the black point)."""
    spec = fit.spec
    if not is_linear_gaussian(spec.family, spec.link):
        raise ModelError(
            "the shrinkage plot compares least-squares fits per group: gaussian models only"
        )
    factor = factor or spec.terms[0].factor
    terms = [t for t in spec.terms if t.factor == factor]
    if not terms:
        raise ModelError(f"no grouping factor {factor!r}")
    Z = np.concatenate([t.Z for t in terms], axis=1)
    names = [n for t in terms for n in t.names]
    fixed = fit.population["estimate"]
    shared = [j for j, n in enumerate(spec.fixed_names) if n not in names]
    partial = (
        spec.y
        - spec.offset
        - spec.X[:, shared] @ fixed[[spec.fixed_names[j] for j in shared]].to_numpy()
    )
    population = np.array([fixed.get(n, 0.0) for n in names])
    ranef = fit.ranef[factor]["condval"][names].to_numpy()
    index = terms[0].level_index
    no_pooling = np.full_like(ranef, np.nan)
    for k in range(len(terms[0].levels)):
        rows = index == k
        if np.linalg.matrix_rank(Z[rows]) == Z.shape[1]:
            no_pooling[k] = np.linalg.lstsq(Z[rows], partial[rows], rcond=None)[0]
    mixed = population + ranef
    fig, (ax,) = _grid(1, 1, width=5.0, height=4.0)
    if len(names) == 1:
        for k in range(len(mixed)):
            ax.plot([0, 1], [no_pooling[k, 0], mixed[k, 0]], color="C0", alpha=0.6, marker="o")
        ax.axhline(population[0], color="k", linestyle="--")
        ax.set_xticks([0, 1], ["no pooling", "mixed model"])
        ax.set_ylabel(names[0])
    else:
        for k in range(len(mixed)):
            ax.annotate(
                "",
                xy=mixed[k, :2],
                xytext=no_pooling[k, :2],
                arrowprops={"arrowstyle": "->", "color": "C0", "alpha": 0.7},
            )
        ax.scatter(no_pooling[:, 0], no_pooling[:, 1], s=12, color="C1", label="no pooling")
        ax.scatter(mixed[:, 0], mixed[:, 1], s=12, color="C0", label="mixed model")
        ax.scatter(*population[:2], color="k", s=40, label="population")
        ax.set(xlabel=names[0], ylabel=names[1])
        ax.legend(fontsize=8)
    ax.set_title(f"Shrinkage of {factor}'s coefficients")
    fig.tight_layout()
    return fig


def check_plots(fit) -> dict[str, Figure]:
    """The standard set for a fit, by name: residuals, random-effect QQ, caterpillar,
    predictive check; trace and rank for posteriors sampled with several chains."""
    figures = {
        "residuals": plot_residuals(fit),
        "ranef_qq": plot_ranef_qq(fit),
        "caterpillar": plot_caterpillar(fit),
        "predictive_check": plot_ppc(fit),
    }
    if fit.kind == "bayesian" and fit.method == "NUTS":
        figures.update(trace=plot_trace(fit), rank=plot_rank(fit))
    return figures
