#!/usr/bin/env bash
# Set up a virtual environment with glmm_bayes and its test dependencies.
#
#   scripts/setup.sh            .venv from requirements.lock: the exact versions CI tests
#                               (pinned with their hashes; Python 3.12, linux x86_64)
#   scripts/setup.sh --latest   .venv-latest with the newest releases pyproject.toml allows,
#                               to test before a lock update (see scripts/lock.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-locked}
case "$mode" in
    locked) venv=.venv ;;
    --latest) venv=.venv-latest ;;
    *) echo "usage: scripts/setup.sh [--latest]" >&2; exit 2 ;;
esac

# The lock was resolved for CPython 3.12: prefer it, on PATH or under pyenv.
find_python() {
    for candidate in python3.12 python3; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
            command -v "$candidate"; return
        fi
    done
    if command -v pyenv >/dev/null 2>&1; then
        for candidate in "$(pyenv root)"/versions/3.12*/bin/python3; do
            [ -x "$candidate" ] && { echo "$candidate"; return; }
        done
    fi
    echo "glmm_bayes's setup needs Python 3.12 (python3.12 on PATH or under pyenv)" >&2
    exit 1
}

if [ ! -x "$venv/bin/python" ]; then
    "$(find_python)" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --quiet --disable-pip-version-check)
if [ "$mode" = locked ]; then
    # every distribution pinned and checked against its hash; the project itself without deps
    "${pip[@]}" install --require-hashes --no-deps --only-binary=:all: -r requirements.lock
    "${pip[@]}" install --no-deps --no-build-isolation --editable .
else
    "${pip[@]}" install --upgrade pip
    "${pip[@]}" install --upgrade --upgrade-strategy eager --editable ".[test]"
fi
