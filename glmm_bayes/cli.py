"""`glmm-bayes fit SPEC.toml --method nuts|reml|ml|laplace|map|all`: fit a model spec file.

A spec file (see models/*.toml and the README):

    data = "sleepstudy"                 # a bundled dataset, or a CSV path relative to the file
    formula = "Reaction ~ Days + (Days | Subject)"
    family = "gaussian"                 # optional; link = "..." optional
    methods = ["nuts", "reml"]          # what --method all runs (default: nuts + the ML method)
    [priors]                            # optional overrides, as Model(priors=...)
    Days = "normal(0, 10)"
    [sampler]                           # optional NUTS settings
    draws = 1000
    warmup = 1000
    chains = 4
    seed = 0
    [laplace]
    nagq = 1
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

import pandas as pd

from .datasets import list_datasets, load_dataset
from .errors import GlmmBayesError
from .model import Model
from .results import compare

METHODS = ("nuts", "reml", "ml", "laplace", "map")


def load_spec(path: Path) -> dict:
    with open(path, "rb") as fh:
        spec = tomllib.load(fh)
    for key in ("data", "formula"):
        if key not in spec:
            raise GlmmBayesError(f"spec file {path} needs a {key!r} entry")
    return spec


def _data(spec: dict, base: Path) -> pd.DataFrame:
    name = spec["data"]
    if name in list_datasets():
        return load_dataset(name)
    return pd.read_csv(base / name)


def default_methods(model: Model) -> list[str]:
    gaussian = model.spec.family.name == "gaussian"
    return ["nuts", "reml" if gaussian else "laplace"]


def run_fit(spec: dict, base: Path, method: str, progress: bool = True, out: Path | None = None):
    model = Model(spec["formula"], _data(spec, base), family=spec.get("family", "gaussian"),
                  link=spec.get("link"), priors=spec.get("priors"))
    methods = spec.get("methods", default_methods(model)) if method == "all" else [method]
    sampler = {"draws": 1000, "warmup": 1000, "chains": 4, "seed": 0, **spec.get("sampler", {})}
    fits = []
    for name in methods:
        if name == "nuts":
            fits.append(model.sample(progress=progress, **sampler))
        elif name == "reml":
            fits.append(model.fit_reml())
        elif name == "ml":
            fits.append(model.fit_ml())
        elif name == "laplace":
            fits.append(model.fit_laplace(**spec.get("laplace", {})))
        elif name == "map":
            fits.append(model.fit_map(seed=sampler["seed"]))
        else:
            raise GlmmBayesError(f"unknown method {name!r}; use one of {', '.join(METHODS)} or all")
    table = compare(*fits)
    if out is not None:
        write_outputs(out, fits, table)
    return model, fits, table


def write_outputs(out: Path, fits, table: pd.DataFrame) -> None:
    """compare.csv, one fixef/varcorr CSV per fit, posterior netcdf files and the comparison plot."""
    from .plots import plot_compare

    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "compare.csv")
    for fit in fits:
        tag = fit.method.lower()
        fit.fixef.to_csv(out / f"fixef_{tag}.csv")
        fit.varcorr.to_csv(out / f"varcorr_{tag}.csv", index=False)
        if hasattr(fit, "idata"):
            fit.idata.to_netcdf(out / f"posterior_{tag}.nc")
    plot_compare(*fits).savefig(out / "compare.png", dpi=120, bbox_inches="tight")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glmm-bayes", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="fit a model spec file and print the comparison table")
    fit.add_argument("spec", type=Path)
    fit.add_argument("--method", default="all", choices=METHODS + ("all",))
    fit.add_argument("--out", type=Path, default=None, help="folder for CSV, netcdf and PNG output")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.spec)
        _, _, table = run_fit(spec, args.spec.parent, args.method, progress=not args.quiet,
                              out=args.out)
    except (GlmmBayesError, FileNotFoundError) as exc:
        print(f"glmm-bayes: error: {exc}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 200, "display.max_columns", 30,
                           "display.float_format", "{:.4g}".format):
        print(f"{spec['formula']}  [{spec.get('family', 'gaussian')}]")
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
