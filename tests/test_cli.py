"""The command line: a model file fitted by REML and Laplace prints the table and writes outputs."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import predicted

import glmm_bayes as gb
from glmm_bayes import cli
from glmm_bayes.cli import main

MODELS = Path(__file__).parent.parent / "models"


@pytest.fixture(autouse=True)
def cache_calls(monkeypatch):
    """`--no-compilation-cache` turns the package's program cache off for the CLI's process; in
    these in-process tests it must not change the test process's setting, so the call is
    recorded instead."""
    calls = []
    monkeypatch.setattr(
        cli, "use_compilation_cache", lambda directory=None: calls.append(directory)
    )
    return calls


def test_the_command_line_keeps_compiled_programs_on_disk(tmp_path, cache_calls):
    assert main(["fit", str(MODELS / "dyestuff.toml"), "--method", "reml"]) == 0
    assert (
        main(["fit", str(MODELS / "dyestuff.toml"), "--method", "reml", "--no-compilation-cache"])
        == 0
    )
    assert cache_calls == [False]
    # a real process: the cache directory fills with the executables of the fit
    cache = tmp_path / "cache"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "glmm_bayes.cli",
            "fit",
            str(MODELS / "dyestuff.toml"),
            "--method",
            "reml",
        ],
        env={**os.environ, "GLMM_BAYES_CACHE": str(cache)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert any(cache.iterdir())


def test_fit_reml_prints_table_and_writes_outputs(tmp_path, capsys):
    assert (
        main(["fit", str(MODELS / "penicillin.toml"), "--method", "reml", "--out", str(tmp_path)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "treatB" in printed and "REML" in printed
    table = pd.read_csv(tmp_path / "compare.csv", header=[0, 1], index_col=0)
    assert abs(table.loc["treatC", ("REML", "estimate")] - 5.0) < 1e-6  # lme4: 5 (balanced design)
    assert (tmp_path / "compare.png").exists() and (tmp_path / "varcorr_reml.csv").exists()


def test_fit_with_wald_intervals_skips_the_profiles(tmp_path):
    """--intervals wald: beta +- 1.96 SE for the fixed effects and no interval for the sds (as
    lme4's confint(method = "Wald")); the default profiles every parameter."""
    for intervals in ("wald", "profile"):
        out = tmp_path / intervals
        assert (
            main(
                [
                    "fit",
                    str(MODELS / "dyestuff.toml"),
                    "--method",
                    "reml",
                    "--out",
                    str(out),
                    "--intervals",
                    intervals,
                    "--quiet",
                ]
            )
            == 0
        )
        table = pd.read_csv(out / "compare.csv", header=[0, 1], index_col=0)["REML"]
        fixef = pd.read_csv(out / "fixef_reml.csv", index_col=0)
        sd = table.loc["sd((Intercept)|Batch)"]
        if intervals == "wald":
            se = fixef.loc["(Intercept)", "std_error"]
            assert table.loc["(Intercept)", "lower"] == pytest.approx(
                1527.5 - 1.959964 * se, rel=1e-6
            )
            assert sd[["lower", "upper"]].isna().all()
        else:
            assert sd["lower"] < sd["estimate"] < sd["upper"]


def test_fit_laplace_with_nagq_from_the_spec(capsys):
    assert main(["fit", str(MODELS / "rikz.toml"), "--method", "laplace"]) == 0
    assert "AGQ(10)" in capsys.readouterr().out


@pytest.mark.slow  # ~32 s with an empty program cache: six families fitted, each compiled
def test_a_model_file_takes_the_new_families_and_the_student_t_df(tmp_path, capsys):
    spec = tmp_path / "t.toml"
    spec.write_text(SPEC + 'family = "student_t"\ndf = 4\n')
    assert main(["fit", str(spec), "--method", "laplace", "--intervals", "wald"]) == 0
    assert "[student_t]" in capsys.readouterr().out
    spec.write_text(SPEC + 'family = "lognormal"\n')  # a gaussian model of log y: REML
    assert main(["fit", str(spec), "--method", "reml", "--intervals", "wald"]) == 0
    counts = 'data = "RIKZ"\nformula = "Richness ~ NAP + (1 | Beach)"\n'
    spec.write_text(counts + 'family = "poisson"\nzi = "~ 1"\n')
    assert main(["fit", str(spec), "--method", "laplace", "--intervals", "wald"]) == 0
    assert "zi_(Intercept)" in capsys.readouterr().out
    spec.write_text(SPEC + 'dispersion = "~ Days"\n')  # an exact Laplace fit is its ML
    assert main(["fit", str(spec), "--method", "ml", "--intervals", "wald"]) == 0
    assert "sigma_Days" in capsys.readouterr().out
    wine = 'data = "wine"\nformula = "rating ~ temp + contact + (1 | judge)"\n'
    spec.write_text(wine + 'family = "cumulative"\n')
    assert main(["fit", str(spec), "--method", "laplace", "--intervals", "wald"]) == 0
    assert "4|5" in capsys.readouterr().out


def test_bad_spec_is_a_clear_error(tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_text('data = "sleepstudy"\nformula = "Reaction ~ Dayz + (1 | Subject)"\n')
    assert main(["fit", str(spec), "--method", "reml"]) == 2
    assert "unknown column 'Dayz'" in capsys.readouterr().err


SPEC = 'data = "sleepstudy"\nformula = "Reaction ~ Days + (1 | Subject)"\n'


@pytest.mark.parametrize(
    "text, message",
    [
        ('data = "sleepstudy"\nformula = "x\n', "is not valid TOML"),
        (SPEC + "[sampler]\ndraw = 10\n", "unknown key 'draw'"),
        (SPEC + "[sampler]\ndraws = 0\n", "draws must be at least 1"),
        (SPEC + 'methods = "reml"\n', "'methods' must be list"),
        (SPEC + 'methods = ["rmel"]\n', "unknown method"),
        (SPEC + 'family = "student_t"\ndf = "4"\n', "'df' must be float"),
        (SPEC + "df = 4\n", "df= applies to family 'student_t', not 'gaussian'"),
        (
            'data = "."\nformula = "Reaction ~ Days + (1 | Subject)"\n',
            "is neither a bundled dataset",
        ),
        (
            'data = "bytes.csv"\nformula = "Reaction ~ Days + (1 | Subject)"\n',
            "could not be read as CSV",
        ),
    ],
)
def test_spec_mistakes_are_one_line_and_exit_2(tmp_path, capsys, text, message):
    (tmp_path / "bytes.csv").write_bytes(bytes(range(256)) * 4)
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    assert main(["fit", str(spec), "--method", "reml"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_unwritable_output_folder_is_found_before_fitting(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    (tmp_path / "a_file").write_text("")
    assert (
        main(["fit", str(spec), "--method", "reml", "--out", str(tmp_path / "a_file" / "out")]) == 2
    )
    captured = capsys.readouterr()
    assert "cannot be written" in captured.err and captured.out == ""


def test_batch_fits_every_response_column_and_names_a_bad_one(tmp_path, capsys):
    import numpy as np

    import glmm_bayes as gb

    data = gb.load_dataset("Dyestuff")
    rng = np.random.default_rng(4)
    responses = pd.DataFrame(
        {f"sim{d}": data["Yield"] + rng.normal(0, 20, len(data)) for d in range(3)}
    )
    responses.to_csv(tmp_path / "responses.csv", index=False)
    out = tmp_path / "out"
    assert (
        main(
            [
                "batch",
                str(MODELS / "dyestuff.toml"),
                "--responses",
                str(tmp_path / "responses.csv"),
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert "3 datasets" in capsys.readouterr().out
    status = pd.read_csv(out / "status.csv", index_col=0)
    summary = pd.read_csv(out / "summary.csv", index_col=[0, 1])
    assert list(status.index) == ["sim0", "sim1", "sim2"]
    single = gb.Model("Yield ~ 1 + (1 | Batch)", data.assign(Yield=responses["sim2"])).fit_reml()
    assert summary.loc[(2, "sigma"), "estimate"] == pytest.approx(single.sigma, rel=1e-9)
    responses.loc[4, "sim1"] = np.nan
    responses.to_csv(tmp_path / "responses.csv", index=False)
    assert (
        main(
            [
                "batch",
                str(MODELS / "dyestuff.toml"),
                "--responses",
                str(tmp_path / "responses.csv"),
                "--quiet",
            ]
        )
        == 2
    )
    assert "dataset 1, column sim1" in capsys.readouterr().err


SPECS = sorted(p.name for p in MODELS.glob("*.toml"))


@pytest.mark.parametrize(
    "name", [pytest.param(s, marks=pytest.mark.slow) if s == "insteval.toml" else s for s in SPECS]
)
def test_every_spec_fits_and_simulates_through_the_cli(name, tmp_path, capsys):
    """Each spec's default frequentist fit (REML or Laplace) and a simulation from it (InstEval's
    in the slow set); every method of every spec runs in test_every_spec_fits_every_method."""
    out = tmp_path / "sims.csv"
    assert (
        main(
            ["simulate", str(MODELS / name), "-n", "2", "--seed", "1", "--out", str(out), "--quiet"]
        )
        == 0
    )
    sims = pd.read_csv(out)
    assert list(sims.columns) == ["sim_1", "sim_2"] and sims.notna().all().all()


@pytest.mark.slow
@pytest.mark.parametrize("name", [s for s in SPECS if s != "insteval.toml"])
def test_every_spec_fits_every_method(name, tmp_path):
    """`fit --method all` (NUTS, the frequentist fit and its profile intervals). InstEval is left
    out: profiling its 73k-row REML fit parameter by parameter takes far longer than its fit."""
    assert (
        main(["fit", str(MODELS / name), "--method", "all", "--out", str(tmp_path), "--quiet"]) == 0
    )
    assert (tmp_path / "compare.csv").exists()


def test_predict_and_simulate_commands(tmp_path, capsys):
    newdata = tmp_path / "new.csv"
    pd.DataFrame({"Days": [0, 5], "Subject": ["308", "999"]}).to_csv(newdata, index=False)
    assert (
        main(
            [
                "predict",
                str(MODELS / "sleepstudy.toml"),
                "--newdata",
                str(newdata),
                "--interval",
                "0.9",
                "--new-levels",
                "population",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "lower" in printed and "999" in printed
    assert main(["predict", str(MODELS / "sleepstudy.toml"), "--newdata", str(newdata)]) == 2
    assert "'999'" in capsys.readouterr().err
    assert (
        main(["predict", str(MODELS / "sleepstudy.toml"), "--newdata", str(tmp_path / "none.csv")])
        == 2
    )
    assert "does not exist" in capsys.readouterr().err


def test_fit_out_writes_the_check_plots(tmp_path):
    assert (
        main(
            [
                "fit",
                str(MODELS / "dyestuff.toml"),
                "--method",
                "reml",
                "--out",
                str(tmp_path),
                "--quiet",
            ]
        )
        == 0
    )
    for name in ("residuals", "ranef_qq", "caterpillar", "predictive_check"):
        assert (tmp_path / f"{name}_reml.png").stat().st_size > 1000


def test_batch_simulate(capsys):
    assert (
        main(["batch", str(MODELS / "dyestuff.toml"), "--simulate", "4", "--seed", "2", "--quiet"])
        == 0
    )
    assert "4 datasets" in capsys.readouterr().out


def test_fit_out_of_nuts_and_map_holds_the_posterior(tmp_path):
    """--out writes each posterior's draws (netcdf) and tables: the fixef CSV is the posterior
    mean of the draws in the netcdf file (NUTS) and the mode beside the Gaussian draws (MAP)."""
    import xarray as xr

    assert (
        main(
            [
                "fit",
                str(MODELS / "dyestuff.toml"),
                "--method",
                "nuts",
                "--out",
                str(tmp_path),
                "--quiet",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "fit",
                str(MODELS / "dyestuff.toml"),
                "--method",
                "map",
                "--out",
                str(tmp_path),
                "--quiet",
            ]
        )
        == 0
    )
    for tag in ("nuts", "map"):
        draws = xr.open_dataset(tmp_path / f"posterior_{tag}.nc", group="posterior")
        fixef = pd.read_csv(tmp_path / f"fixef_{tag}.csv", index_col=0)
        assert draws["(Intercept)"].sizes["draw"] >= 1000
        if tag == "nuts":
            assert fixef.loc["(Intercept)", "estimate"] == pytest.approx(
                float(draws["(Intercept)"].mean()), rel=1e-12
            )
        assert (tmp_path / f"varcorr_{tag}.csv").exists() and (
            tmp_path / f"caterpillar_{tag}.png"
        ).exists()


def test_predict_options_reach_the_fit(tmp_path):
    """--scale, --re-form, --marginal, --new-levels and --method give what the API gives."""
    spec = MODELS / "rikz.toml"
    data = gb.load_dataset("RIKZ").head(6)
    newdata, out = tmp_path / "new.csv", tmp_path / "predicted.csv"
    data.to_csv(newdata, index=False)
    fit = gb.Model(
        "Richness ~ NAP + (1 | Beach)", gb.load_dataset("RIKZ"), family="poisson"
    ).fit_laplace(nagq=10)  # rikz.toml's [laplace]
    cases = [
        ([], {}),
        (["--scale", "link"], {"scale": "link"}),
        (["--re-form", "~0"], {"re_form": "~0"}),
        (["--re-form", "~0", "--marginal"], {"re_form": "~0", "marginal": True}),
    ]
    for flags, kwargs in cases:
        assert (
            main(
                [
                    "predict",
                    str(spec),
                    "--newdata",
                    str(newdata),
                    "--method",
                    "laplace",
                    "--out",
                    str(out),
                    "--quiet",
                    *flags,
                ]
            )
            == 0
        )
        table = pd.read_csv(out)
        assert list(table.columns) == list(data.columns) + ["prediction"]
        np.testing.assert_allclose(table["prediction"], predicted(fit, data, **kwargs), rtol=1e-8)


def test_batch_out_files_equal_the_api_batch(tmp_path):
    """batch --responses --method ml --out: status.csv and summary.csv as fit_ml_batch gives."""
    data = gb.load_dataset("Dyestuff")
    rng = np.random.default_rng(0)
    responses = pd.DataFrame(
        {f"y{k}": data["Yield"] + rng.normal(0, 30, len(data)) for k in range(3)}
    )
    responses.to_csv(tmp_path / "responses.csv", index=False)
    assert (
        main(
            [
                "batch",
                str(MODELS / "dyestuff.toml"),
                "--responses",
                str(tmp_path / "responses.csv"),
                "--method",
                "ml",
                "--out",
                str(tmp_path),
                "--quiet",
            ]
        )
        == 0
    )
    status = pd.read_csv(tmp_path / "status.csv", index_col=0)
    summary = pd.read_csv(tmp_path / "summary.csv")
    api = gb.Model("Yield ~ 1 + (1 | Batch)", data).fit_ml_batch(
        responses.to_numpy().T, progress=False
    )
    assert list(status.index) == ["y0", "y1", "y2"] and status["converged"].all()
    np.testing.assert_allclose(summary["estimate"], api.summary()["estimate"], rtol=1e-9)


def test_arguments_and_newdata_are_checked_before_any_fit(tmp_path, capsys, monkeypatch):
    """Each of these once ran the fit (seconds) before refusing; now none reaches a fit, and
    each error is one line, a bad choice included (argparse printed its usage)."""

    def no_fit(*args, **kwargs):
        raise AssertionError("a fit was started")

    monkeypatch.setattr(cli, "fit_one", no_fit)
    monkeypatch.setattr(cli, "batch_on_ray", no_fit)
    newdata = tmp_path / "new.csv"
    pd.DataFrame({"Days": [0, 5]}).to_csv(newdata, index=False)
    known = tmp_path / "known.csv"
    pd.DataFrame({"Days": [0, 5], "Subject": ["308", "999"]}).to_csv(known, index=False)
    sleep, dyestuff = str(MODELS / "sleepstudy.toml"), str(MODELS / "dyestuff.toml")
    cases = [
        (["predict", sleep, "--newdata", str(newdata)], "Subject"),
        (["predict", sleep, "--newdata", str(known)], "'999'"),
        (["predict", sleep, "--newdata", str(known), "--interval", "1.5"], "--interval"),
        (["simulate", dyestuff, "-n", "0"], "-n must be an integer >= 1"),
        (["simulate", dyestuff, "-n", "-1"], "-n must be an integer >= 1"),
        (["batch", dyestuff, "--simulate", "0"], "--simulate must be an integer >= 1"),
        (["batch", dyestuff, "--simulate", "3", "--ray", "--workers", "0"], "--workers must be"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
    with pytest.raises(SystemExit) as exit_:
        main(["fit", dyestuff, "--method", "bogus"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'bogus'" in err and err.count("\n") == 1 and "usage" not in err
