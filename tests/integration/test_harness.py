"""The test harness itself: an unreachable PostgreSQL ends the run at once with one clear message (not one
error per test for minutes), and the server and the database names come from options or the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def _pytest(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MADOGUCHI_TEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**clean, **env},
        timeout=300,
        check=False,
    )


def test_an_unreachable_postgresql_stops_the_run_with_one_message() -> None:
    url = f"postgresql://postgres:pw-never-shown@127.0.0.1:{free_port()}/postgres"
    done = _pytest("--db", "postgres", "tests/api/test_reading.py", MADOGUCHI_TEST_PG_URL=url)
    out = done.stdout + done.stderr
    assert done.returncode == 3, out
    assert out.count("is unreachable") == 1
    assert f"PostgreSQL at 127.0.0.1:{url.rsplit(':', 1)[1].split('/')[0]}/postgres is unreachable" in out
    assert (
        "pw-never-shown" not in out
        and " ERROR " not in out
        and "error" not in out.lower().split("unreachable")[0]
    )


def test_the_database_name_prefix_must_be_an_identifier() -> None:
    done = _pytest("--db", "postgres", "--db-prefix", 'x"; DROP', "tests/api/test_reading.py")
    assert done.returncode == 4 and "must be a lower-case identifier" in done.stdout + done.stderr


@pytest.mark.parametrize("option", ["--pg-url", "--db-prefix"])
def test_the_options_are_documented(option: str) -> None:
    assert option in (ROOT / "README.md").read_text(encoding="utf-8")
