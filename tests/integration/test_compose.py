"""docker-compose.yml is valid Compose (against the compose-spec JSON schema that check-jsonschema vendors; no
Docker engine needed), and README's container section and the file agree: the same required variables, an SMTP
host that exists, settings that start in production and, with the local profile's mail catcher, in development."""

from __future__ import annotations

import base64
import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from infra.settings import NOT_SETTINGS, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README[README.index("## Containers") : README.index("## Layout")]
VARIABLE = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")


def compose_schema() -> dict:  # type: ignore[type-arg]
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return json.loads(vendored.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def interpolate(value: str, env: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if name in env:
            return env[name]
        if op == "?":
            raise KeyError(f"{name} is required: {arg}")
        return arg if op == "-" else ""

    return VARIABLE.sub(one, value)


def app_environment(env: dict[str, str]) -> dict[str, str]:
    raw = COMPOSE["x-app-environment"]
    return {k: interpolate(str(v), env) for k, v in raw.items()}


KEK = base64.b64encode(bytes(range(32))).decode()


def readme_exports() -> dict[str, str]:
    block = SECTION[SECTION.index("```sh") : SECTION.index("```", SECTION.index("```sh") + 5)]
    names = [m.group(1) for m in re.finditer(r"^export (\w+)=", block, re.MULTILINE)]
    # Each as the README's command makes it: 48 characters, or base64 of 32 bytes for the key-encryption key.
    return {name: KEK if name == "MADOGUCHI_KEK" else "x" * 48 for name in names}


def test_the_compose_file_is_valid_compose() -> None:
    jsonschema.validate(COMPOSE, compose_schema())


def test_the_schema_check_catches_a_mistake() -> None:
    broken = {
        **COMPOSE,
        "services": {**COMPOSE["services"], "api": {**COMPOSE["services"]["api"], "port": []}},
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, compose_schema())


def test_readme_exports_exactly_the_variables_compose_requires() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    required = {m.group(1) for m in VARIABLE.finditer(text) if m.group(2) == "?"}
    assert required == set(readme_exports())
    assert required >= {"POSTGRES_PASSWORD", "MADOGUCHI_TRUSTED_PROXIES", "MADOGUCHI_SECRET_KEY"}


def test_every_madoguchi_variable_in_compose_is_a_setting() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    names = {m.group(1) for m in VARIABLE.finditer(text)} | set(COMPOSE["x-app-environment"])
    unknown = {n for n in names if n.startswith("MADOGUCHI_")} - Settings.known_names() - NOT_SETTINGS
    assert unknown == set()


def test_the_production_setup_of_the_readme_starts() -> None:
    env = app_environment(readme_exports())
    settings = Settings(**{k.removeprefix("MADOGUCHI_").lower(): v for k, v in env.items()})
    assert settings.is_production and settings.smtp_host == "x" * 48 and settings.smtp_starttls
    assert settings.database_url.startswith("postgresql://madoguchi:")


def test_the_local_run_with_the_mail_catcher_starts_and_reaches_it() -> None:
    command = SECTION[SECTION.index("MADOGUCHI_ENV=development") :]
    command = command[: command.index("docker compose --profile local up")]
    given = dict(re.findall(r"(\w+)=(\S+)", command))
    env = app_environment({**readme_exports(), **given})
    settings = Settings(**{k.removeprefix("MADOGUCHI_").lower(): v for k, v in env.items()})
    assert not settings.is_production
    mailpit = COMPOSE["services"][settings.smtp_host]  # the SMTP host is a service of the compose network
    assert mailpit["profiles"] == ["local"] and mailpit["image"].startswith("axllent/mailpit:")
    assert settings.smtp_port == 1025 and not settings.smtp_starttls  # mailpit's SMTP port, plain
    assert "127.0.0.1:8025:8025" in mailpit["ports"]


def test_the_replica_setup_of_the_readme_starts_on_the_optional_services() -> None:
    """README's "several replicas" command: Redis and the S3 store are services of their own profiles, and the
    app's settings, as compose passes them, point at them and still start in production."""
    block = SECTION[SECTION.index("### Operations: running several replicas") :]
    block = block[block.index("```sh") : block.index("docker compose --profile redis")]
    given = dict(re.findall(r"(MADOGUCHI_\w+)=(\S+)", block))
    env = app_environment({**readme_exports(), **given})
    settings = Settings(**{k.removeprefix("MADOGUCHI_").lower(): v for k, v in env.items()})
    assert (
        settings.is_production
        and settings.redis_url is not None
        and settings.s3_bucket == "madoguchi-evidence"
    )
    redis_host = settings.redis_url.get_secret_value().split("//", 1)[1].split(":", 1)[0]
    s3_host = str(settings.s3_endpoint_url).split("//", 1)[1].split(":", 1)[0]
    assert COMPOSE["services"][redis_host]["profiles"] == ["redis"]
    assert COMPOSE["services"][s3_host]["profiles"] == ["s3"]
    assert settings.s3_endpoint_url.endswith(":8333")  # type: ignore[union-attr]  # SeaweedFS's S3 port
    # Without the variables the optional settings are unset (compose passes them empty), not empty strings.
    plain = Settings(
        **{k.removeprefix("MADOGUCHI_").lower(): v for k, v in app_environment(readme_exports()).items()}
    )
    assert plain.redis_url is None and plain.s3_bucket is None and plain.s3_secret_access_key is None
