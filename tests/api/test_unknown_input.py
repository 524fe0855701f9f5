"""Nothing a caller or an operator types is silently ignored: unknown query parameters answer 422, unknown
MADOGUCHI_* variables are reported by name at start-up, and a development `.env` file is read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from domain.actors import Role
from infra.settings import Settings
from tests.api.consultation_helpers import open_consultation
from tests.conftest import assert_problem


async def test_a_misspelt_filter_is_refused_not_ignored(client, people) -> None:
    supervisor = await people.create(Role.supervisor)
    owner = await people.create()
    await open_consultation(client, owner)
    response = await client.get(
        "/v1/consultations", headers=supervisor.headers, params={"unassigned": "true"}
    )
    body = assert_problem(response, 422, "unknown_query_parameter")
    assert body["field"] == "unassigned" and body["fields"] == ["unassigned"]
    # The declared filter still works, alone and with paging.
    ok = await client.get(
        "/v1/consultations", headers=supervisor.headers, params={"assignee": "none", "limit": 10}
    )
    assert ok.status_code == 200 and len(ok.json()["items"]) == 1


@pytest.mark.parametrize("path", ["/v1/consultations", "/v1/users", "/v1/desks", "/v1/categories"])
async def test_every_list_route_refuses_unknown_parameters(client, people, path: str) -> None:
    admin = await people.create(Role.admin)
    response = await client.get(path, headers=admin.headers, params={"sort": "created_at"})
    assert_problem(response, 422, "unknown_query_parameter")


async def test_an_unknown_name_that_is_not_an_identifier_is_not_echoed(client) -> None:
    response = await client.get("/v1/categories?%3Cscript%3Ealert(1)%3C%2Fscript%3E=1")
    body = assert_problem(response, 422, "unknown_query_parameter")
    assert body["field"] == "*" and "script" not in response.text


def test_unknown_madoguchi_variables_are_named_with_a_hint_never_a_value() -> None:
    environ = {
        "MADOGUCHI_CORS_ORIGIN": "https://秘密.example.jp",
        "MADOGUCHI_DATABASE_URL": "sqlite:///x.db",
        "MADOGUCHI_TEST_PG_URL": "postgresql://harness",  # the test harness's own
        "MADOGUCHI_PUBLISH": "127.0.0.1:8000",  # docker-compose.yml's own
        "PATH": "/usr/bin",
    }
    assert Settings.unknown_names(environ) == [("MADOGUCHI_CORS_ORIGIN", "MADOGUCHI_CORS_ORIGINS")]


def _cli(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MADOGUCHI_")}
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        capture_output=True,
        text=True,
        env={**clean, **env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


def test_the_commands_report_an_unknown_variable_at_start_up(tmp_path: Path) -> None:
    secret = "誰にも見せない値-4711"
    done = _cli(
        tmp_path,
        {"MADOGUCHI_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}", "MADOGUCHI_SECRET_KEYS": secret},
        "migrate",
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "warning: MADOGUCHI_SECRET_KEYS is not a madoguchi setting and is ignored; did you mean MADOGUCHI_SECRET_KEY?"
    ]
    assert secret not in done.stdout + done.stderr


def test_a_dotenv_file_is_read_in_development_and_the_environment_wins(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / ".env").write_text(
        "MADOGUCHI_PUBLIC_URL=https://mypage.example.jp\nMADOGUCHI_TERMS_VERSION=2027-01\nMADOGUCHI_TYPO=1\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MADOGUCHI_TERMS_VERSION", "2027-04")
    monkeypatch.delenv("MADOGUCHI_ENV", raising=False)
    settings = Settings.from_environment()
    assert settings.public_url == "https://mypage.example.jp" and settings.terms_version == "2027-04"
    assert ("MADOGUCHI_TYPO", None) in Settings.unknown_names()
    # In production the file is not read: configuration comes from the environment only.
    monkeypatch.setenv("MADOGUCHI_ENV", "production")
    assert Settings.unknown_names() == []
    with pytest.raises(ValueError, match="refusing to start in production"):
        Settings.from_environment()
