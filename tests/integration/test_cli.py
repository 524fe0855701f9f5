"""The operator commands, run as an operator would (a subprocess, settings from the environment)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PASSWORD = "a long passphrase of my own 2026"


def run(db: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MADOGUCHI_DATABASE_URL": f"sqlite:///{db}",
        "MADOGUCHI_MAIL_BACKEND": "file",
        "MADOGUCHI_MAIL_FILE_DIR": str(db.parent / "mail"),
    }
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_migrate_create_admin_council_and_drain_the_worker(tmp_path: Path) -> None:
    db = tmp_path / "ops.db"
    assert run(db, "migrate").returncode == 0
    loaded = run(db, "load-reference")
    assert loaded.returncode == 0 and "27 desks" in loaded.stdout
    admin = run(
        db,
        "create-user",
        "--email",
        "admin@example.jp",
        "--role",
        "admin",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert admin.returncode == 0 and admin.stdout.startswith("created admin ")
    assert PASSWORD not in admin.stdout + admin.stderr
    council = run(
        db,
        "create-user",
        "--email",
        "k@example.jp",
        "--role",
        "council",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert council.returncode == 1 and "council_requires_expiry" in council.stderr
    council = run(
        db,
        "create-user",
        "--email",
        "k@example.jp",
        "--role",
        "council",
        "--password-stdin",
        "--expires-at",
        "2027-03-31T00:00:00",
        stdin=PASSWORD + "\n",
    )
    assert council.returncode == 0
    drained = run(db, "worker", "--once")
    assert drained.returncode == 0 and drained.stdout.strip().startswith("delivered")


def test_a_refused_production_start_prints_setting_names_only(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MADOGUCHI_ENV": "production",
        "MADOGUCHI_REDIS_URL": "redis://:hunter2-redis-pass@redis.internal:6379/0",
        "MADOGUCHI_SMTP_PASSWORD": "smtp-pass-9f8e7d",
        "MADOGUCHI_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "MADOGUCHI_SECRET_KEY": "too-short-key",
    }
    for args in (["migrate"], ["serve", "--port", "1"]):
        done = subprocess.run(
            [sys.executable, "-m", "infra.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert done.returncode == 2
        assert "MADOGUCHI_SECRET_KEY" in done.stderr and "MADOGUCHI_DATABASE_URL" in done.stderr
        output = done.stdout + done.stderr
        for value in ("hunter2", "smtp-pass", "too-short-key", "redis.internal", "x.db", "input_value"):
            assert value not in output
