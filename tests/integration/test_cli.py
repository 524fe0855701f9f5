"""The operator commands, with settings from the environment as an operator gives them.

What a process is tested for runs as a real process: the installed `madoguchi` console script starting, and
the exit code and one-line stderr of a refusal at start-up (an unknown revision, production on default
secrets). Every other command runs in this process through typer's runner (`invoke`), which gives the
command the same arguments, environment and stdin and reports the same stdout, stderr and exit code; an
unexpected exception is raised here instead of becoming a traceback and exit code 1. A process start costs
about 5 s of CPU (imports, the reference data), a command run here only its work.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from infra.cli import app

PASSWORD = "a long passphrase of my own 2026"
ROOT = Path(__file__).resolve().parents[2]

# Nothing to deliver; a first pass may still recount the statistics summaries of the current fiscal year.
NOTHING_DUE = re.compile(r"delivered 0: nothing due(; \d+ fiscal years of statistics recounted)?")


def _environment(db: Path) -> dict[str, str]:
    return {
        "MADOGUCHI_DATABASE_URL": f"sqlite:///{db}",
        "MADOGUCHI_MAIL_BACKEND": "file",
        "MADOGUCHI_MAIL_FILE_DIR": str(db.parent / "mail"),
    }


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run(db: Path, *args: str, stdin: str = "") -> Ran:
    """One command in this process, as `madoguchi ARGS` would run it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        # catch_exceptions=False: an exception the command does not turn into an exit code fails the test.
        result = CliRunner().invoke(
            app, list(args), input=stdin, env=_environment(db), catch_exceptions=False
        )
    finally:
        # The worker configures logging onto the runner's stderr, which is gone after the command.
        root.handlers[:] = handlers
        root.setLevel(level)
    return Ran(result.exit_code, result.stdout, result.stderr)


def run_process(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script in a process of its own, importing this checkout's code."""
    script = Path(sys.executable).parent / "madoguchi"
    return subprocess.run(
        [str(script), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **_environment(db), "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )


def test_migrate_create_admin_council_and_drain_the_worker(tmp_path: Path) -> None:
    db = tmp_path / "ops.db"
    migrated = run_process(db, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert (
        migrated.stdout.splitlines()[-1].startswith("database at ") and "(head): applied " in migrated.stdout
    )
    loaded = run(db, "load-reference")
    assert loaded.returncode == 0 and "32 desks" in loaded.stdout
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
    assert drained.returncode == 0 and NOTHING_DUE.fullmatch(drained.stdout.strip())
    dry = run(db, "retention", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.strip() == "would shred 0 consultations; 0 kept by a legal hold"


def _tables(db: Path) -> set[str]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _version(db: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return sorted(r[0] for r in conn.execute("SELECT version_num FROM alembic_version"))


def test_migrate_moves_the_database_up_and_down_and_says_what_it_did(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    up = run(db, "migrate", "0003")
    assert up.returncode == 0, up.stderr
    lines = up.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:3]] == [
        ["applied", "0001"],
        ["applied", "0002"],
        ["applied", "0003"],
    ]
    assert lines[-1] == "database at 0003: applied 3 revisions"
    assert _version(db) == ["0003"] and "chatbot_session" not in _tables(db)

    from infra.db.migrate import head_revision, known_revisions

    head = run(db, "migrate")
    newer = len(known_revisions()) - 3
    assert head.returncode == 0
    assert head.stdout.splitlines()[-1] == f"database at {head_revision()} (head): applied {newer} revisions"
    assert len(head.stdout.splitlines()) == newer + 1  # one line per revision, as it is applied
    again = run(db, "migrate")
    assert again.stdout.strip() == f"database already at {head_revision()} (head): nothing to do"

    # Down to a revision on one branch of the merge: the other branches go too, so the database is at 0005.
    down = run(db, "migrate", "0005")
    assert down.returncode == 0, down.stderr
    assert (
        "reverted 0008" in down.stdout and "reverted 0006" in down.stdout and "reverted 0007" in down.stdout
    )
    assert _version(db) == ["0005"]
    assert down.stdout.splitlines()[-1].startswith("database at 0005: ")

    base = run(db, "migrate", "base")
    assert base.returncode == 0 and _version(db) == []
    assert base.stdout.splitlines()[-1].startswith("database at base (empty): reverted ")
    assert _tables(db) <= {"alembic_version"}


def test_migrate_refuses_an_unknown_revision_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "u.db"
    refused = run_process(db, "migrate", "9999")
    assert refused.returncode == 2
    assert refused.stdout == ""
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in refused.stderr
    assert lines[0].startswith("error: unknown revision '9999'; use head, base or one of 0001, 0002, ")


def test_worker_once_says_nothing_was_due(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    assert run(db, "migrate").returncode == 0
    drained = run(db, "worker", "--once")
    assert drained.returncode == 0 and NOTHING_DUE.fullmatch(drained.stdout.strip())


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
