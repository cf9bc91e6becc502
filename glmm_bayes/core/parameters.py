"""The one map of a model's population-level parameters (MixedModels.jl's parmap).

`ParameterMap.from_spec` lists every population parameter once, in the natural order

    fixed effects, then per term its sds and correlations, then the family's aux (a dispersion
    formula's coefficients in place of its first), then the zero-inflation coefficients, then
    the residual structure's parameters,

each with its one name ("(Intercept)", "Days", "sd(Days|Subject)",
"cor((Intercept),Days|Subject)", "sigma"), class, bounds and the program's sample site that
holds it. Everything that names, orders, bounds or packs these parameters reads the map: the
priors, the program's sites, the REML/ML and Laplace parameter names, the profiles' natural
parameters phi, the tables and `idata`. Its forms of the same parameters:

    named values    {name: value} over any leading sample axes (`values`)
    phi             the natural parameters as one vector, in the map's order (`unpack`)
    program sites   beta_j by column name, sd(c|g) per column, cor(g) = L_k (the LKJ Cholesky
                    factor of a term's correlation matrix), aux, the residual's (`site_names`)
    theta           the entries of T_k column by column, lme4's (`theta_names`)
    engines         beta, T_k = diag(sd_k) L_k with Cov(b_k) = T_k T_k', aux

A new family parameter is the family's `AuxParameter`; a new residual structure its
`ResidualLayout`; neither touches this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from ..design import ModelSpec
from ..families import pack_aux
from .residual import ResidualLayout
from .structure import RandomEffectsLayout, TermLayout


def sd_name(coef: str, group: str) -> str:
    return f"sd({coef}|{group})"


def zi_name(coef: str) -> str:
    """A zero-inflation coefficient's name (brms's zi_x, glmmTMB's zi~x)."""
    return f"zi_{coef}"


def dispersion_name(parameter: str, coef: str) -> str:
    """A dispersion coefficient's name: the family parameter's, then the column (brms's
    sigma_x, glmmTMB's d~x): sigma_(Intercept) is log sigma where the covariates are 0."""
    return f"{parameter}_{coef}"


def cor_name(group: str) -> str:
    """The program's site for a term's correlations (its LKJ Cholesky factor)."""
    return f"cor({group})"


def cor_pair_name(a: str, b: str, group: str) -> str:
    return f"cor({a},{b}|{group})"


@dataclass(frozen=True)
class PopulationParameter:
    """One population-level parameter."""

    name: str
    cls: str  # Intercept | fixed | sd | cor | the family's aux | residual's
    site: str  # the program's sample site that holds it
    lower: float = -np.inf
    upper: float = np.inf
    group: str | None = None  # the term's label (sd, cor), VarIdent's column (sigma_ratio)
    coef: str | None = None  # the design column (fixed, sd)

    @property
    def positive(self) -> bool:
        """Lives on (0, inf): moved on the log scale by the profiles."""
        return self.lower == 0 and self.upper == np.inf


@dataclass(frozen=True)
class ParameterMap:
    """The population parameters of one model (hashable: a static argument of compiled code)."""

    parameters: tuple[PopulationParameter, ...]
    fixed_names: tuple[str, ...]
    terms: tuple[TermLayout, ...]  # the layout's: label, column names, isotropic
    aux: tuple[str, ...]  # the family's parameters (`Family.aux`), then zero inflation's
    residual_names: tuple[str, ...]

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> ParameterMap:
        params = [
            PopulationParameter(n, "Intercept" if n == "(Intercept)" else "fixed", n, coef=n)
            for n in spec.fixed_names
        ]
        terms = RandomEffectsLayout.from_spec(spec).terms
        for t in terms:
            params += [
                PopulationParameter(
                    sd_name(c, t.label), "sd", sd_name(c, t.label), 0.0, group=t.label, coef=c
                )
                for c in t.names
            ]
            params += [
                PopulationParameter(
                    cor_pair_name(t.names[c], t.names[r], t.label),
                    "cor",
                    cor_name(t.label),
                    -1.0,
                    1.0,
                    t.label,
                )
                for r, c in t.pairs
            ]
        family, aux = list(spec.family.aux), []
        if spec.dispersion is not None:  # the first family parameter is exp(X_disp delta)
            modelled = family.pop(0).name
            names = [(dispersion_name(modelled, c), c) for c in spec.dispersion.names]
            aux += [PopulationParameter(n, "dispersion", n, coef=c) for n, c in names]
        # a class other than its name: one (ordered) site for the class, as the thresholds'
        aux += [
            PopulationParameter(a.name, a.cls or a.name, a.cls or a.name, a.lower) for a in family
        ]
        zi_names = spec.zi.names if spec.zi is not None else ()
        aux += [PopulationParameter(zi_name(c), "zi", zi_name(c), coef=c) for c in zi_names]
        params += aux
        layout = ResidualLayout.from_spec(spec.residual, gaussian=True)
        residual = () if layout is None else layout.names
        if layout is not None:
            for name, lo, hi, kind in zip(layout.names, *layout.bounds(), layout.classes()):
                group = spec.residual.variance.by if kind == "sigma_ratio" else None
                params.append(PopulationParameter(name, kind, name, float(lo), float(hi), group))
        return cls(
            tuple(params), tuple(spec.fixed_names), terms, tuple(p.name for p in aux), residual
        )

    # ---- names
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    def __getitem__(self, name: str) -> PopulationParameter:
        return next(p for p in self.parameters if p.name == name)

    def __len__(self) -> int:
        return len(self.parameters)

    @property
    def site_names(self) -> tuple[str, ...]:
        """The program's population-level sample sites, in the order it draws them."""
        return tuple(dict.fromkeys(p.site for p in self.parameters))

    def theta_names(self) -> list[str]:
        """A readable name per entry of theta: the sd or correlation that entry mainly carries."""
        names = []
        for t in self.terms:
            rows, cols = np.tril_indices(len(t.names))
            for r, c in sorted(zip(rows, cols), key=lambda rc: (rc[1], rc[0])):  # column-major
                names.append(
                    sd_name(t.names[r], t.label)
                    if r == c
                    else cor_pair_name(t.names[c], t.names[r], t.label)
                )
        return names

    # ---- the natural parameters phi
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.array([p.lower for p in self.parameters]),
            np.array([p.upper for p in self.parameters]),
        )

    def positive(self) -> np.ndarray:
        return np.array([p.positive for p in self.parameters])

    def values(self, fixef, covariances, aux=None, residual=None) -> dict[str, np.ndarray]:
        """Name -> values over the sample axes, from beta (..., p), Cov(b_k) (..., q, q) per
        term, aux and the residual structure's parameters (..., r): phi by name."""
        out = {name: np.asarray(fixef)[..., j] for j, name in enumerate(self.fixed_names)}
        for t, cov in zip(self.terms, covariances):
            cov = np.asarray(cov)
            sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
            for j, coef in enumerate(t.names):
                out[sd_name(coef, t.label)] = sd[..., j]
            for r, c in t.pairs:
                out[cor_pair_name(t.names[c], t.names[r], t.label)] = cov[..., r, c] / (
                    sd[..., r] * sd[..., c]
                )
        if self.aux:
            parts = np.moveaxis(np.asarray(aux), -1, 0) if self._stacks else [aux]
            out.update({name: np.asarray(v) for name, v in zip(self.aux, parts)})
        for j, name in enumerate(self.residual_names):
            out[name] = np.asarray(residual)[..., j]
        return out

    def unpack(self, phi):
        """phi -> (beta, [T_k] as the engines take them, aux (1 without one; several on a last
        axis), the residual structure's parameters or None); a pure JAX function of phi."""
        p = len(self.fixed_names)
        pos, factors = p, []
        for t in self.terms:
            k = len(t.names)
            sd, cor = phi[pos : pos + k], phi[pos + k : pos + k + len(t.pairs)]
            factors.append(
                sd[0] * jnp.eye(t.q, dtype=phi.dtype)  # T = sd I_r of a known-covariance term
                if t.isotropic
                else factor_from_sd_cor(sd, cor, k)
            )
            pos += k + len(t.pairs)
        k = len(self.aux)
        aux = 1.0 if k == 0 else (phi[pos : pos + k] if self._stacks else phi[pos])
        pos += k
        residual = phi[pos:] if self.residual_names else None
        return phi[:p], factors, aux, residual

    # ---- program sites
    @property
    def zi_names(self) -> tuple[str, ...]:
        """The zero-inflation coefficients' names (the last of `aux`)."""
        return tuple(p.name for p in self.parameters if p.cls == "zi")

    @property
    def dispersion_names(self) -> tuple[str, ...]:
        """The dispersion formula's coefficients' names (the first of `aux`)."""
        return tuple(p.name for p in self.parameters if p.cls == "dispersion")

    @property
    def ordered_sites(self) -> dict[str, int]:
        """The sites holding several of the family's parameters, increasing (the cumulative's
        thresholds), by name: how many."""
        sites = [self[name].site for name in self.aux if self[name].site != name]
        return {site: sites.count(site) for site in sites}

    @property
    def aux_coefficients(self) -> tuple[str, ...]:
        """The unbounded parameters in `aux`, which have Wald standard errors as the fixed
        effects do: the dispersion and zero-inflation coefficients and the thresholds."""
        return tuple(n for n in self.aux if self[n].lower == -np.inf)

    @property
    def _stacks(self) -> bool:
        return len(self.aux) > 1 or bool(self.zi_names or self.dispersion_names)

    def pack_aux(self, values, xp=jnp):
        """The family's `aux` from one value per name of `aux`: 1.0 without any, the value
        itself for one, else stacked on a last axis (`families.pack_aux`; always with a
        dispersion or zero-inflation formula, whose coefficients `Family.rows` applies)."""
        return xp.stack(values, axis=-1) if self._stacks else pack_aux(values, xp)

    def aux_from_sites(self, sites, xp=jnp):
        """The family's `aux` from the sites, or any mapping by name."""
        return self.pack_aux([self.site_value(sites, name, xp) for name in self.aux], xp)

    def site_value(self, sites, name: str, xp=jnp):
        """A parameter's value from a mapping by its name, or from the program's site it shares
        with others of its class (the thresholds' ordered vector: its place among them)."""
        if name in sites:
            return xp.asarray(sites[name])
        site = self[name].site
        members = [p.name for p in self.parameters if p.site == site]
        return xp.asarray(sites[site])[..., members.index(name)]

    def factors_from_sites(self, sites: dict) -> list:
        """[T_k = diag(sd_k) L_k] from the program's sites (any leading sample axes)."""
        out = []
        for t in self.terms:
            sd = jnp.stack([jnp.asarray(sites[sd_name(c, t.label)]) for c in t.names], axis=-1)
            chol = sites.get(cor_name(t.label))
            out.append(sd[..., :, None] * chol if chol is not None else sd[..., :, None])
        return out


def factor_from_sd_cor(sd, cor, q: int) -> jnp.ndarray:
    """T_k = diag(sd) chol(C) from the sds and the below-diagonal correlations of C (row-major
    over np.tril_indices(q, -1))."""
    rows, cols = np.tril_indices(q, -1)
    C = jnp.eye(q, dtype=sd.dtype).at[rows, cols].set(cor).at[cols, rows].set(cor)
    return sd[:, None] * jnp.linalg.cholesky(C)
