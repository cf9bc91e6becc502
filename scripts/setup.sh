#!/usr/bin/env bash
# Create .venv with Python >= 3.12 and install glmm_bayes with its test dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
find_python() {
    for candidate in python3.13 python3.12 python3; do
        if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then
            command -v "$candidate"; return
        fi
    done
    if command -v pyenv >/dev/null; then
        for candidate in "$(pyenv root)"/versions/3.12*/bin/python3 "$(pyenv root)"/versions/3.13*/bin/python3; do
            [ -x "$candidate" ] && { echo "$candidate"; return; }
        done
    fi
    echo "glmm_bayes needs Python >= 3.12 (python3.12 on PATH or under pyenv)" >&2; exit 1
}
if [ ! -x .venv/bin/python ]; then
    "$(find_python)" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
