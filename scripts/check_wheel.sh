#!/usr/bin/env bash
# Build the wheel, install it with the locked dependencies in a fresh virtual environment,
# and fit a worked example from it, away from the source tree: catches a module or data file
# that the editable install finds and the wheel leaves out. Needs .venv (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

dist=$(mktemp -d)
env=$(mktemp -d)
trap 'rm -rf "$dist" "$env"' EXIT
pip=(--quiet --disable-pip-version-check)
.venv/bin/python -m pip "${pip[@]}" wheel --no-deps --no-build-isolation --wheel-dir "$dist" .
"$(.venv/bin/python -c 'import sys; print(sys._base_executable)')" -m venv "$env"
"$env/bin/python" -m pip "${pip[@]}" install --require-hashes --no-deps --only-binary=:all: \
    -r requirements.lock
"$env/bin/python" -m pip "${pip[@]}" install --no-deps "$dist"/glmm_bayes-*.whl
cd "$env"
"$env/bin/python" - <<'PY'
import glmm_bayes as gb

assert "site-packages" in gb.__file__, gb.__file__
for name in gb.list_datasets():
    gb.load_dataset(name)
fit = gb.Model("Reaction ~ Days + (Days | Subject)", gb.load_dataset("sleepstudy")).fit_reml()
assert abs(fit.reml_criterion - 1743.628) < 1e-3, fit.reml_criterion    # lme4's
print(f"wheel: {gb.__file__}; {len(gb.list_datasets())} datasets; sleepstudy REML criterion "
      f"{fit.reml_criterion:.4f}")
PY
