"""Lint and format are part of the suite, so CI holds every commit to them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "api", "domain", "infra", "tests"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_ruff_check() -> None:
    result = ruff("check", "--no-cache")
    assert result.returncode == 0, result.stdout


def test_ruff_format() -> None:
    result = ruff("format", "--check", "--no-cache")
    assert result.returncode == 0, result.stdout
