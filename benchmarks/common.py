"""Shared by the benchmark scripts: each job runs in a fresh Python (or R) process, so import,
compilation and the work itself are all timed, as a user would meet them."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from functools import cache
from pathlib import Path

PYTHON = sys.executable
PACKAGE = Path(__file__).resolve().parent.parent / "glmm_bayes"


@cache
def compile_bytecode() -> None:
    """Write the package's bytecode (.pyc), as `pip install` does for the peers' packages and
    for a user's install of this one: the checkout is installed editable, and where
    PYTHONDONTWRITEBYTECODE is set (CI's image) every process would otherwise compile the
    package's source again."""
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(PACKAGE)], check=True)


def run_fresh(
    code: str, python: str = PYTHON, timeout: float = 3600, cache: str | None = None
) -> dict:
    """Run `code` in a fresh interpreter; it prints one JSON object on its last line. Returns
    that object with `process_s`, the whole process's wall time. `cache` is the process's
    GLMM_BAYES_CACHE (the package's compiled programs on disk): by default a new, empty folder,
    as a first-time user has."""
    compile_bytecode()
    with tempfile.TemporaryDirectory() as fresh:
        env = {
            **os.environ,
            "PYTHONWARNINGS": "ignore",
            "GLMM_BAYES_CACHE": str(cache or os.path.join(fresh, "programs")),
        }
        start = time.perf_counter()
        done = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=timeout, env=env
        )
        elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"benchmark job failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "process_s": elapsed}


def run_r(code: str, timeout: float = 3600) -> dict | None:
    """Run R `code` (printing one JSON object via jsonlite) when Rscript is present."""
    if shutil.which("Rscript") is None:
        return None
    start = time.perf_counter()
    done = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        print(f"R job failed: {done.stderr[-1500:]}", file=sys.stderr)
        return None
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "process_s": elapsed}


def python_for(module: str) -> str | None:
    """An interpreter that can import `module`: this one, or $GLMM_BAYES_BENCH_PYTHON (a
    separate environment for peers whose pins clash with ours, such as Bambi's)."""
    for python in (PYTHON, os.environ.get("GLMM_BAYES_BENCH_PYTHON")):
        if (
            python
            and subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode
            == 0
        ):
            return python
    return None


def machine() -> str:
    """The CPU (its model name where Linux gives one), cores, OS and Python: machines of one kind
    differ by 1.5x from run to run, so every table names the one it ran on."""
    cpu = platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = f"{names[0]} ({cpu})" if names else cpu
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()}, Python {platform.python_version()}"


def print_table(title: str, rows: list[tuple]) -> None:
    """Rows of strings, the first column left-aligned to its longest entry."""
    print(f"\n{title}  ({machine()})")
    width = max(len(str(row[0])) for row in rows)
    for row in rows:
        print(
            "  " + "  ".join(f"{c:<{width}}" if i == 0 else f"{c:>14}" for i, c in enumerate(row))
        )
