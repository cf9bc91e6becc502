"""Plots, each returning a matplotlib Figure: the posterior next to the point fits
(`plot_compare`) and the model checks (`checks`)."""

from .checks import (
    check_plots,
    plot_caterpillar,
    plot_group_fits,
    plot_ppc,
    plot_prior_posterior,
    plot_ranef_qq,
    plot_rank,
    plot_residuals,
    plot_shrinkage,
    plot_trace,
)
from .compare import plot_compare

__all__ = [
    "check_plots",
    "plot_caterpillar",
    "plot_compare",
    "plot_group_fits",
    "plot_ppc",
    "plot_prior_posterior",
    "plot_rank",
    "plot_ranef_qq",
    "plot_residuals",
    "plot_shrinkage",
    "plot_trace",
]
