#!/usr/bin/env bash
# Write requirements.lock: the newest releases that pyproject.toml allows today, each pinned
# with the hash of the file pip would install on CPython 3.12, linux x86_64 (CI's machine).
#
# Before updating the lock, test the newest releases:
#   scripts/setup.sh --latest && .venv-latest/bin/python -m pytest -q
# then run this script, `scripts/setup.sh` (which reinstalls from the new lock) and the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh --latest >/dev/null
report=$(mktemp)
trap 'rm -f "$report"' EXIT
# resolve from scratch (nothing installed counts) and report what would be installed;
# setuptools is the build backend that installs the project itself (without build isolation)
.venv-latest/bin/python -m pip --quiet --disable-pip-version-check install --dry-run \
    --ignore-installed --only-binary=:all: --report "$report" ".[test]" "setuptools>=68"
.venv-latest/bin/python - "$report" > requirements.lock <<'PY'
import json
import platform
import sys

report = json.load(open(sys.argv[1]))
lines = []
for item in report["install"]:
    info = item["download_info"]
    if "archive_info" not in info:        # the project itself (a local directory)
        continue
    meta = item["metadata"]
    lines.append(f"{meta['name'].lower()}=={meta['version']} "
                 f"--hash=sha256:{info['archive_info']['hashes']['sha256']}")
print("# The versions CI tests: written by scripts/lock.sh, installed by scripts/setup.sh.")
print(f"# Resolved for CPython {platform.python_version()} on {sys.platform} "
      f"{platform.machine()}; pyproject.toml keeps the supported ranges.")
print("\n".join(sorted(lines)))
PY
echo "wrote requirements.lock ($(grep -c '==' requirements.lock) distributions)"
