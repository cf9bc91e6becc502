"""`glmm-bayes fit MODEL.toml --method nuts|reml|ml|laplace|map|all`: fit a model file;
`glmm-bayes batch MODEL.toml --responses FILE.csv | --simulate N --method reml|ml|laplace|nuts
[--ray [ADDRESS]]`: fit its design to every column of FILE.csv (one response per column, one
row per row of the model), or to N responses simulated from its frequentist fit, in this
process or on Ray workers;
`glmm-bayes predict MODEL.toml --newdata FILE.csv`: predictions at new rows;
`glmm-bayes simulate MODEL.toml -n N`: responses simulated from the fitted model.
Compiled programs are kept on disk for later runs (the package's default, see
`compilation_cache`) unless `--no-compilation-cache` is given, and NUTS chains run side by
side on a CPU device per core
(`use_cpu_cores`).

A model file (see models/*.toml and docs/guide.md):

    data = "sleepstudy"                 # a bundled dataset, or a CSV path relative to the file
    formula = "Reaction ~ Days + (Days | Subject)"
    family = "gaussian"                 # optional; link = "..." optional; df = 4 (student_t)
    zi = "~ x"                          # optional zero inflation (poisson, negbinomial)
    dispersion = "~ x"                  # optional: log sigma (shape, phi) depends on x
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
    [correlation]                       # optional residual correlation within groups
    type = "AR1"                        # AR1 | CAR1 | GaussianCorrelation | CompoundSymmetry
    group = "Mare"                      # and order = "..." (AR1) or time = "..." (the others)
    [variance]                          # optional: a residual sd per level of a column
    by = "Sex"
    weights = "w"                       # optional prior-weights column (top level)
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tomllib
from pathlib import Path

import pandas as pd

from .compilation_cache import use_compilation_cache
from .cpu_devices import use_cpu_cores
from .datasets import list_datasets, load_dataset
from .design.newdata import model_rows
from .design.residual import AR1, CAR1, CompoundSymmetry, GaussianCorrelation, VarIdent
from .errors import DataError, GlmmBayesError, integer_argument, level_argument
from .families import is_linear_gaussian
from .model import Model
from .ray_batch import METHODS as BATCH_METHODS
from .ray_batch import batch_on_ray
from .results import compare
from .results.prediction import prediction_terms

METHODS = ("nuts", "reml", "ml", "laplace", "map")
#: The model file's schema: top-level keys and the keys of each table, with their types.
SCHEMA = {
    "data": str,
    "formula": str,
    "family": str,
    "link": str,
    "df": float,
    "zi": str,
    "dispersion": str,
    "methods": list,
    "priors": dict,
    "sampler": dict,
    "laplace": dict,
    "control": dict,
    "correlation": dict,
    "variance": dict,
    "weights": str,
}
CORRELATION = {"type": str, "group": str, "order": str, "time": str}
VARIANCE = {"by": str}
CORRELATION_TYPES = {
    "AR1": AR1,
    "CAR1": CAR1,
    "GaussianCorrelation": GaussianCorrelation,
    "CompoundSymmetry": CompoundSymmetry,
}
SAMPLER = {
    "draws": int,
    "warmup": int,
    "chains": int,
    "seed": int,
    "chain_method": str,
    "target_accept": float,
    "random_effects": str,
    "max_tree_depth": int,
}
LAPLACE = {"nagq": int}


class ModelFileError(GlmmBayesError):
    """A model file that cannot be run: syntax, unknown keys, wrong types or values."""


def _check_table(table: dict, schema: dict, where: str) -> None:
    for key, value in table.items():
        if key not in schema:
            raise ModelFileError(f"{where}: unknown key {key!r}; known keys: {', '.join(schema)}")
        expected = schema[key]
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if expected is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            raise ModelFileError(f"{where}: {key!r} must be {expected.__name__}, got {value!r}")


def load_model_file(path: Path) -> dict:
    """Read and validate a model file; every problem is a `ModelFileError` naming the key."""
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist or is not a file")
    try:
        with open(path, "rb") as fh:
            spec = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ModelFileError(f"{path} is not valid TOML: {exc}") from None
    _check_table(spec, SCHEMA, str(path))
    for key in ("data", "formula"):
        if key not in spec:
            raise ModelFileError(f"model file {path} needs a {key!r} entry")
    _check_table(spec.get("sampler", {}), SAMPLER, f"{path} [sampler]")
    _check_table(spec.get("laplace", {}), LAPLACE, f"{path} [laplace]")
    _check_table(spec.get("correlation", {}), CORRELATION, f"{path} [correlation]")
    _check_table(spec.get("variance", {}), VARIANCE, f"{path} [variance]")
    for key in ("draws", "chains"):
        if spec.get("sampler", {}).get(key, 1) < 1:
            raise ModelFileError(
                f"{path} [sampler]: {key} must be at least 1, got {spec['sampler'][key]}"
            )
    if spec.get("sampler", {}).get("warmup", 0) < 0:
        raise ModelFileError(
            f"{path} [sampler]: warmup must be >= 0, got {spec['sampler']['warmup']}"
        )
    if unknown := [m for m in spec.get("methods", []) if m not in METHODS]:
        raise ModelFileError(
            f"{path}: unknown method(s) {unknown} in 'methods'; use {', '.join(METHODS)}"
        )
    return spec


def _data(spec: dict, base: Path) -> pd.DataFrame:
    name = spec["data"]
    if name in list_datasets():
        return load_dataset(name)
    path = base / name
    if not path.is_file():
        raise ModelFileError(
            f"data {name!r} is neither a bundled dataset ({', '.join(list_datasets())}) "
            f"nor a file ({path})"
        )
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"data file {path} could not be read as CSV: {exc}") from None
    if frame.shape[1] < 2:
        raise ModelFileError(f"data file {path} has {frame.shape[1]} column(s); is it a CSV file?")
    return frame


def check_output_folder(out: Path) -> None:
    """Fail before any fit runs if `out` cannot be created or written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".glmm-bayes-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ModelFileError(
            f"output folder {out} cannot be written: {exc.strerror or exc}"
        ) from None


def default_methods(model: Model) -> list[str]:
    return ["nuts", "reml" if is_linear_gaussian(model.spec.family, model.spec.link) else "laplace"]


#: What each correlation type takes besides the group (default: a time column).
_POSITION_NEEDED = {"AR1": "order", "CompoundSymmetry": "nothing else"}


def _residual_structures(spec: dict) -> dict:
    """The [correlation] and [variance] tables and `weights` as Model's keyword arguments."""
    out = {"weights": spec.get("weights")}
    if table := dict(spec.get("correlation", {})):
        kind = table.pop("type", None)
        if kind not in CORRELATION_TYPES:
            raise ModelFileError(
                f"[correlation] type must be one of {', '.join(CORRELATION_TYPES)}, got {kind!r}"
            )
        try:
            out["correlation"] = CORRELATION_TYPES[kind](**table)
        except TypeError:
            raise ModelFileError(
                f"[correlation] type {kind} takes group and "
                f"{_POSITION_NEEDED.get(kind, 'time')}; "
                f"got {sorted(table)}"
            ) from None
    if "variance" in spec:
        if "by" not in spec["variance"]:
            raise ModelFileError('[variance] needs by = "column"')
        out["variance"] = VarIdent(spec["variance"]["by"])
    return out


def _model(spec: dict, base: Path) -> Model:
    return Model(
        spec["formula"],
        _data(spec, base),
        family=spec.get("family", "gaussian"),
        link=spec.get("link"),
        df=spec.get("df"),
        zi=spec.get("zi"),
        dispersion=spec.get("dispersion"),
        priors=spec.get("priors"),
        control=spec.get("control"),
        **_residual_structures(spec),
    )


def run_fit(spec: dict, base: Path, method: str, progress: bool = True, intervals: str = "profile"):
    """(model, fits, comparison table). The frequentist fits' intervals are profile-likelihood
    intervals, with `intervals="satterthwaite"` t intervals with Satterthwaite df for an LMM's
    fixed effects, or with `intervals="wald"` Wald intervals (NaN for variance components), which
    skip the profiles' many refits on large models."""
    model = _model(spec, base)
    methods = spec.get("methods", default_methods(model)) if method == "all" else [method]
    fits = [fit_one(model, spec, name, progress) for name in methods]
    return model, fits, compare(*fits, intervals=intervals)


def write_outputs(out: Path, fits, table: pd.DataFrame, intervals: str = "profile") -> None:
    """compare.csv, one fixef/varcorr CSV per fit, posterior netcdf files, the comparison plot
    and each fit's model-checking plots (PNG)."""
    import matplotlib.pyplot as plt

    from .plots import check_plots, plot_compare

    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "compare.csv")
    for fit in fits:
        tag = fit.method.lower()
        fit.fixef.to_csv(out / f"fixef_{tag}.csv")
        fit.varcorr.to_csv(out / f"varcorr_{tag}.csv", index=False)
        if fit.kind == "bayesian":
            fit.to_netcdf(out / f"posterior_{tag}.nc")
        for name, figure in check_plots(fit).items():
            figure.savefig(out / f"{name}_{tag}.png", dpi=100, bbox_inches="tight")
            plt.close(figure)
    figure = plot_compare(*fits, intervals=intervals)
    figure.savefig(out / "compare.png", dpi=120, bbox_inches="tight")
    plt.close(figure)


def fit_one(model: Model, spec: dict, method: str, progress: bool = True):
    """One fit of the model file's model; "default" is REML for gaussian models, else Laplace."""
    if method == "default":
        method = default_methods(model)[1]
    sampler = {"draws": 1000, "warmup": 1000, "chains": 4, "seed": 0, **spec.get("sampler", {})}
    if method == "nuts":
        return model.sample(progress=progress, **sampler)
    if method == "map":
        return model.fit_map(seed=sampler["seed"])
    if method == "laplace":
        return model.fit_laplace(**spec.get("laplace", {}))
    if method in ("reml", "ml"):
        return getattr(model, f"fit_{method}")()
    raise GlmmBayesError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise ModelFileError(f"{what} file {path} does not exist or is not a file")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{what} file {path} could not be read as CSV: {exc}") from None


def run_predict(
    spec: dict,
    base: Path,
    newdata: Path,
    method: str,
    re_form,
    scale: str,
    new_levels: str,
    marginal: bool,
    interval: float | None,
    progress: bool = True,
) -> pd.DataFrame:
    """newdata with the predictions appended (prediction, and interval columns when asked)."""
    frame = _read_csv(newdata, "newdata")
    model = _model(spec, base)
    _check_newdata(model, frame, re_form, new_levels, marginal)
    fit = fit_one(model, spec, method, progress)
    predictions = fit.predict(
        frame,
        re_form=re_form,
        scale=scale,
        new_levels=new_levels,
        marginal=marginal,
        interval=interval,
    )
    if isinstance(predictions, pd.DataFrame):
        return predictions
    return frame.assign(prediction=predictions.mean(axis=0))  # a posterior's draws


def _check_newdata(
    model: Model, frame: pd.DataFrame, re_form, new_levels: str, marginal: bool
) -> None:
    """newdata's columns and, unless asked for, its grouping levels, before any fit."""
    keep = prediction_terms(model.spec, re_form, marginal)
    rows = model_rows(model.spec, frame, grouped=keep)
    for term, kept in zip(rows.terms, keep):
        if kept and new_levels == "error" and term.new_levels:
            raise DataError(
                f"newdata has level(s) {term.new_levels[:10]} the model was not fitted "
                "to; use --new-levels population or sample"
            )


def check_arguments(args) -> None:
    """The numbers a command takes, before any data is read or model fitted."""
    if getattr(args, "interval", None) is not None:
        level_argument("--interval", args.interval)
    if args.command == "simulate":
        integer_argument("-n", args.n, 1)
    if args.command == "batch":
        for name in ("simulate", "workers", "chunk_size"):
            if getattr(args, name) is not None:
                integer_argument(f"--{name.replace('_', '-')}", getattr(args, name), 1)


def run_simulate(
    spec: dict,
    base: Path,
    n: int,
    seed: int,
    method: str,
    re_form,
    newdata: Path | None,
    progress: bool = True,
) -> pd.DataFrame:
    frame = None if newdata is None else _read_csv(newdata, "newdata")
    fit = fit_one(_model(spec, base), spec, method, progress)
    return fit.simulate(n, seed=seed, newdata=frame, re_form=re_form)


def run_batch(
    spec: dict,
    base: Path,
    responses: Path | None,
    method: str,
    chunk_size: int,
    progress: bool = True,
    simulate: int = 0,
    seed: int = 0,
    ray: str | None = None,
    workers: int | None = None,
):
    """(per-dataset status, summary indexed by dataset and parameter). The responses come from
    a CSV file, or are `simulate` draws from the model file's frequentist fit (REML or
    Laplace). With `ray` ("local" or a cluster address) the datasets go to Ray workers in
    chunks."""
    model = _model(spec, base)
    if responses is not None:
        frame = _read_csv(responses, "responses")
    else:
        frame = fit_one(model, spec, "default", progress).simulate(simulate, seed=seed)
    options = {}
    if method == "nuts":
        options = {
            k: v
            for k, v in spec.get("sampler", {}).items()
            if k in ("draws", "warmup", "chains", "seed", "target_accept", "max_tree_depth")
        }
        options["chunk_size"] = chunk_size
    elif method == "laplace":
        options = spec.get("laplace", {})
    if ray is None:
        result = getattr(model, BATCH_METHODS[method][0])(frame, progress=progress, **options)
    else:
        result = batch_on_ray(
            model,
            frame,
            method,
            address=None if ray == "local" else ray,
            workers=workers,
            progress=progress,
            **options,
        )
    status = result.status.set_axis(frame.columns, axis=0).rename_axis("dataset")
    return status, result.summary()


class _Parser(argparse.ArgumentParser):
    """argparse with one line for a bad option, as every other error (`_fail`), not the usage."""

    def error(self, message):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="glmm-bayes", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="fit a model file and print the comparison table")
    fit.add_argument("model_file", type=Path, metavar="MODEL.toml")
    fit.add_argument("--method", default="all", choices=METHODS + ("all",))
    fit.add_argument("--out", type=Path, default=None, help="folder for CSV, netcdf and PNG output")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.add_argument(
        "--intervals",
        default="profile",
        choices=("profile", "wald", "satterthwaite"),
        help="frequentist intervals in the table (wald skips the profiles; satterthwaite: "
        "t intervals for an LMM's fixed effects)",
    )
    batch = sub.add_parser("batch", help="fit the model file's design to many responses")
    batch.add_argument("model_file", type=Path, metavar="MODEL.toml")
    source = batch.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--responses",
        type=Path,
        help="CSV with one column per dataset and one row per row of the model",
    )
    source.add_argument(
        "--simulate",
        type=int,
        metavar="N",
        help="fit N responses simulated from the model file's REML/Laplace fit",
    )
    batch.add_argument("--seed", type=int, default=0, help="seed of --simulate")
    batch.add_argument("--method", default="reml", choices=tuple(BATCH_METHODS))
    batch.add_argument("--chunk-size", type=int, default=64, help="datasets per NUTS chunk")
    batch.add_argument(
        "--out", type=Path, default=None, help="folder for status.csv and summary.csv"
    )
    batch.add_argument("--quiet", action="store_true", help="no progress bar")
    batch.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run chunks of datasets on Ray workers: a cluster address, or none "
        "for a local instance (needs the ray extra)",
    )
    batch.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Ray workers of a local instance (default: every core)",
    )
    for name, text in (
        ("predict", "predictions at the rows of a CSV file"),
        ("simulate", "responses simulated from the fitted model"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("model_file", type=Path, metavar="MODEL.toml")
        command.add_argument(
            "--method",
            default="default",
            choices=METHODS + ("default",),
            help="the fit to use (default: REML for gaussian models, else Laplace)",
        )
        command.add_argument(
            "--re-form",
            default=None if name == "predict" else "~0",
            help="random effects to condition on: '~0' none, '~(1|g)' g's terms",
        )
        command.add_argument("--out", type=Path, default=None, help="CSV file to write")
        command.add_argument("--quiet", action="store_true", help="no progress bar")
    predict, simulate = sub.choices["predict"], sub.choices["simulate"]
    predict.add_argument("--newdata", type=Path, required=True)
    predict.add_argument("--scale", default="response", choices=("response", "link"))
    predict.add_argument("--new-levels", default="error", choices=("error", "population", "sample"))
    predict.add_argument(
        "--marginal",
        action="store_true",
        help="average the response over the random effects not conditioned on",
    )
    predict.add_argument("--interval", type=float, default=None, help="interval level, e.g. 0.95")
    simulate.add_argument("-n", type=int, default=1, help="number of simulated responses")
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--newdata", type=Path, default=None)
    for command in sub.choices.values():
        command.add_argument(
            "--no-compilation-cache",
            action="store_true",
            help="do not keep compiled programs on disk for later runs",
        )
    args = parser.parse_args(argv)
    try:
        check_arguments(args)
    except GlmmBayesError as exc:
        return _fail(str(exc))
    if args.no_compilation_cache:
        use_compilation_cache(False)
    with contextlib.suppress(RuntimeError):  # main() inside a process where JAX already runs
        use_cpu_cores()  # (embedded, tests): keep its devices
    if args.command == "batch":
        return _main_batch(args)
    if args.command in ("predict", "simulate"):
        return _main_table(args)
    try:
        spec = load_model_file(args.model_file)
        if args.out is not None:
            check_output_folder(args.out)
        _, fits, table = run_fit(
            spec,
            args.model_file.parent,
            args.method,
            progress=not args.quiet,
            intervals=args.intervals,
        )
    except GlmmBayesError as exc:
        return _fail(str(exc))
    with pd.option_context(
        "display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4g}".format
    ):
        print(f"{spec['formula']}  [{spec.get('family', 'gaussian')}]")
        print(table)
    if args.out is not None:
        try:
            write_outputs(args.out, fits, table, args.intervals)
        except OSError as exc:
            return _fail(f"writing to {args.out} failed: {exc}")
    return 0


def _fail(message: str) -> int:
    """One line on stderr and exit status 2: how every error reaches the command line."""
    print(f"glmm-bayes: error: {message}", file=sys.stderr)
    return 2


def _main_table(args) -> int:
    """predict and simulate: a table printed, or written to --out."""
    try:
        spec = load_model_file(args.model_file)
        if args.command == "predict":
            table = run_predict(
                spec,
                args.model_file.parent,
                args.newdata,
                args.method,
                args.re_form,
                args.scale,
                args.new_levels,
                args.marginal,
                args.interval,
                not args.quiet,
            )
        else:
            table = run_simulate(
                spec,
                args.model_file.parent,
                args.n,
                args.seed,
                args.method,
                args.re_form,
                args.newdata,
                not args.quiet,
            )
    except GlmmBayesError as exc:
        return _fail(str(exc))
    if args.out is None:
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            print(table.to_string(max_rows=60))
        return 0
    try:
        table.to_csv(args.out, index=False)
    except OSError as exc:
        return _fail(f"writing {args.out} failed: {exc}")
    return 0


def _main_batch(args) -> int:
    try:
        spec = load_model_file(args.model_file)
        if args.out is not None:
            check_output_folder(args.out)
        status, summary = run_batch(
            spec,
            args.model_file.parent,
            args.responses,
            args.method,
            args.chunk_size,
            not args.quiet,
            args.simulate or 0,
            args.seed,
            args.ray,
            args.workers,
        )
    except GlmmBayesError as exc:
        return _fail(str(exc))
    column = "estimate" if "estimate" in summary else "mean"
    across = summary[column].groupby(level="parameter", sort=False).describe()
    with pd.option_context(
        "display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4g}".format
    ):
        print(
            f"{spec['formula']}  [{args.method}, {len(status)} datasets, "
            f"{int(status['converged'].sum())} converged]"
        )
        print(across[["mean", "std", "min", "max"]])
    if args.out is not None:
        status.to_csv(args.out / "status.csv")
        summary.to_csv(args.out / "summary.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
