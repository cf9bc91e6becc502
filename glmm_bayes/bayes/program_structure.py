"""The program's static structure and the priors' numbers: what `Model` builds with every
model (NumPyro-free: a frequentist fit never loads NumPyro), and the maps from the program's
sample sites to the population parameters that the posterior uses (`bayes.program` holds the
NumPyro programs themselves).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..core.compiled import bind, compiled
from ..core.parameters import ParameterMap
from ..core.scaling import parameter_scales
from ..core.structure import RandomEffectsLayout
from ..design import ModelSpec
from ..families import Family, Link
from .priors import DistributionForm, Parameter, Prior, PriorForm


@dataclass(frozen=True)
class ProgramStructure:
    """Static description of the program (hashable): names, shapes and the priors' forms. The
    numbers that depend on the data are `PriorValues`, traced, so that a same-shaped model on
    other data reuses the compiled program."""

    parameters: ParameterMap  # the population parameters and their sites
    layout: RandomEffectsLayout  # the terms: labels, column names, shapes
    family: Family
    link: Link
    prior_forms: tuple[tuple[str, object], ...]  # (site, `Parameter.form`)

    @classmethod
    def from_spec(
        cls, spec: ModelSpec, parameters: ParameterMap, priors: list[Parameter]
    ) -> ProgramStructure:
        return cls(
            parameters,
            RandomEffectsLayout.from_spec(spec),
            spec.family,
            spec.link,
            tuple((p.name, p.form) for p in priors),
        )

    def prior(self, name: str, priors: PriorValues):
        """The prior distribution of site `name`, with its arguments from `priors`."""
        form = dict(self.prior_forms)[name]
        prior = (
            form.distribution(priors.arguments[name])
            if isinstance(form, (PriorForm, DistributionForm))
            else form
        )
        k = self.parameters.ordered_sites.get(name)
        if k is None:
            return prior
        from ..distributions import OrderedVector

        return OrderedVector(prior, k)

    @property
    def fixed_names(self) -> tuple[str, ...]:
        return self.parameters.fixed_names

    @property
    def site_names(self) -> tuple[str, ...]:
        """The population-level sample sites, in the order the program draws them."""
        return self.parameters.site_names

    @property
    def sampled_names(self) -> tuple[str, ...]:
        """The population-level sites NUTS moves: `site_names` with each fixed effect in its
        standardised units (`population_parameters`)."""
        fixed = len(self.fixed_names)
        return tuple(standardised_name(n) for n in self.fixed_names) + self.site_names[fixed:]

    @property
    def level_sites(self) -> tuple[str, ...]:
        """The non-centred program's z_k sites, (n_k, q_k) each: no observation has two levels
        of one term, so the potential's Hessian couples no two levels of a site."""
        return tuple(z_site(t.label) for t in self.layout.terms)

    @property
    def residual_names(self) -> tuple[str, ...]:
        """The residual structure's parameters (`core.residual`), after aux."""
        return self.parameters.residual_names

    @property
    def intercept_index(self) -> int | None:
        return self.fixed_names.index("(Intercept)") if "(Intercept)" in self.fixed_names else None


class PriorValues(NamedTuple):
    """The priors' numbers, a pytree traced into the program: each prior's arguments by
    parameter (a `Prior`'s, or the leaves of a user's numpyro distribution; see
    `Parameter.form`), the units s_y / s_x_j of the fixed effects, and a typical value
    (`Prior.typical`) of each sample site whose prior gives one, where NUTS's chains and the
    MAP optimiser start."""

    arguments: dict
    fixed_scales: jnp.ndarray
    initial: dict


def prior_values(spec: ModelSpec, parameters: list[Parameter]) -> PriorValues:
    """The `PriorValues` of `parameters` on `spec`'s data (float64 NumPy arrays)."""
    fixed_scales = np.asarray(parameter_scales(spec).beta, dtype=float)
    scales = dict(zip(spec.fixed_names, fixed_scales))
    arguments, initial = {}, {}
    for param in parameters:
        if param.numbers is not None:
            arguments[param.name] = param.numbers
        if not isinstance(param.prior, Prior):
            continue
        typical = param.prior.typical()
        if typical is None:
            continue
        if param.name in scales:
            initial[standardised_name(param.name)] = np.asarray(typical / scales[param.name])
        else:
            initial[param.name] = np.asarray(typical)
    # an ordered site (the thresholds) starts at its parameters' moments, in order
    for site in {a.cls for a in spec.family.aux if a.cls}:
        starts = [a.moment(spec.y, None) for a in spec.family.aux if a.cls == site]
        initial[site] = np.asarray(starts, dtype=float)
    return PriorValues(arguments, fixed_scales, initial)


def centring_means(column_means, intercept_index):
    """What `centred_design` subtracts: the column means, 0 for the intercept (and for all
    columns in a model without one)."""
    if intercept_index is None:
        return jnp.zeros_like(column_means)
    return column_means.at[intercept_index].set(0.0)


def centred_design(X, intercept_index):
    """X with every non-intercept column centred, and the column means."""
    means = centring_means(jnp.mean(X, axis=0), intercept_index)
    return X - means, means


def z_site(label: str) -> str:
    return f"z({label})"


def standardised_name(name: str) -> str:
    return f"std({name})"


def population_from_sites(sites: dict, structure: ProgramStructure, X=None):
    """The program's sites (any leading sample axes) -> (coefficients, [T_k], aux), the one map
    from site names to parameters. Coefficients are on the centred design, or on the original
    design when `X` (whose column means undo the centring) is given."""
    parameters = structure.parameters
    factors = parameters.factors_from_sites(sites)
    coefs = (
        jnp.stack([jnp.asarray(sites[n]) for n in structure.fixed_names], axis=-1)
        if structure.fixed_names
        else jnp.zeros(factors[0].shape[:-2] + (0,))
    )
    if X is not None:
        coefs = uncentre(
            coefs,
            centred_design(jnp.asarray(X), structure.intercept_index)[1],
            structure.intercept_index,
        )
    return coefs, factors, parameters.aux_from_sites(sites)


def population_of_draws(sites: dict, structure: ProgramStructure, X) -> tuple:
    """`population_from_sites` on the original design X for draws held on the host, as NumPy
    arrays, in one compiled call per shape (run eagerly, each of its dozen small operations
    would be compiled on its own the first time)."""
    needed = {name: sites[name] for name in structure.site_names if name in sites}
    out = compiled(bind(population_from_sites, structure=structure))(needed, X=np.asarray(X))
    return jax.tree_util.tree_map(np.asarray, out)


def residual_from_sites(sites: dict, structure: ProgramStructure):
    """The residual structure's natural parameters (..., n) from the sites, or None."""
    if not structure.residual_names:
        return None
    return jnp.stack([jnp.asarray(sites[n]) for n in structure.residual_names], axis=-1)


def uncentre(coefs, means, intercept_index):
    """Coefficients on the centred design -> on the original design (last axis)."""
    if intercept_index is None:
        return coefs
    coefs = jnp.asarray(coefs)
    return coefs.at[..., intercept_index].add(-jnp.sum(coefs * means, axis=-1))
