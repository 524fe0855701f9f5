"""The type check is part of the suite: mypy over api, domain and infra with the pyproject configuration
(pydantic plugin, check_untyped_defs, warn_unused_ignores) must report no errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_reports_no_errors() -> None:
    # No paths on the command line: `files`, `exclude` and the plugins come from [tool.mypy].
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Success: no issues found" in output, output
