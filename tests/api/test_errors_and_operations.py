"""Problem documents for every error status, and the operational surface (health, headers, CORS, limits)."""

from __future__ import annotations

import base64

import httpx
import pytest

from domain.actors import Role
from infra.settings import Settings
from tests.conftest import assert_problem, make_settings


async def test_401_without_token_carries_www_authenticate(client) -> None:
    response = await client.get("/v1/me")
    body = assert_problem(response, 401, "missing_token")
    assert response.headers["www-authenticate"] == "Bearer"
    assert body["title"] == "ログインが必要です"


async def test_titles_follow_accept_language(client) -> None:
    english = await client.get("/v1/me", headers={"Accept-Language": "en-GB,en;q=0.9,ja;q=0.5"})
    assert english.json()["title"] == "Sign-in required"
    japanese = await client.get("/v1/me", headers={"Accept-Language": "en;q=0.3, ja"})
    assert japanese.json()["title"] == "ログインが必要です"
    assert english.json()["code"] == japanese.json()["code"] == "missing_token"


async def test_a_problem_type_resolves_to_its_catalogue_entry_and_instance_is_the_path(
    client, people
) -> None:
    admin = await people.create(Role.admin)
    path = "/v1/users/9a1d1c4e-3f7b-4a8e-9b2c-0d1e2f3a4b5c"
    body = assert_problem(await client.get(path, headers=admin.headers), 404, "user_not_found")
    assert body["instance"] == path  # the request path, not the route template
    assert body["type"] == "/v1/problems/user_not_found"
    entry = (await client.get(body["type"])).json()
    assert entry["code"] == "user_not_found" and entry["status"] == 404
    assert entry["title_ja"] == body["title"] and entry["title_en"] and entry["meaning"]
    assert_problem(await client.get("/v1/problems/no_such_code"), 404, "not_found")


async def test_the_catalogue_lists_every_code_once_with_both_titles(client) -> None:
    entries = (await client.get("/v1/problems")).json()
    codes = [e["code"] for e in entries]
    assert len(codes) == len(set(codes)) and {"stale_version", "invalid_text", "database_unavailable"} <= set(
        codes
    )
    assert all(e["title_ja"] and e["title_en"] and e["meaning"] and 400 <= e["status"] < 600 for e in entries)


def test_every_code_the_code_raises_is_in_the_catalogue() -> None:
    """Scans api/, domain/ and infra/ for domain errors raised with a literal code."""
    import ast
    from pathlib import Path

    from infra.knowledge import load_problem_catalogue

    classes = {"Unauthenticated", "Forbidden", "NotFound", "InvalidState", "Conflict", "PreconditionFailed"}
    classes |= {"PreconditionRequired", "ValidationFailed", "RateLimited", "Unavailable", "MalformedRequest"}
    root = Path(__file__).resolve().parents[2]
    raised: set[str] = set()
    statuses: dict[str, set[int]] = {}
    from api.errors import STATUS_OF

    status_of = {cls.__name__: status for cls, status in STATUS_OF}
    for package in ("api", "domain", "infra"):
        for source in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                if name not in classes:
                    continue
                literals = [
                    a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
                ]
                literals += [
                    k.value.value
                    for k in node.keywords
                    if k.arg == "code" and isinstance(k.value, ast.Constant)
                ]
                raised |= set(literals[:1])
                for code in literals[:1]:
                    statuses.setdefault(code, set()).add(status_of[name])
    assert raised, "the scan found nothing: it is broken"
    from api.errors import DEFAULT_CODES

    raised |= set(DEFAULT_CODES.values())
    catalogue = load_problem_catalogue()
    assert raised - set(catalogue) == set()
    assert {c: s for c, s in statuses.items() if s != {catalogue[c].status}} == {}


async def test_validation_messages_follow_accept_language(client) -> None:
    for language, message in (("ja", "必須項目です"), ("en", "Field required")):
        response = await client.post(
            "/v1/auth/password-reset", json={}, headers={"Accept-Language": language}
        )
        body = assert_problem(response, 422, "validation_failed")
        assert body["errors"][0]["msg"] == message


async def test_403_for_a_role_that_may_not(client, people) -> None:
    consulter = await people.create(Role.consulter)
    assert_problem(await client.get("/v1/users", headers=consulter.headers), 403, "role_not_allowed")


async def test_404_for_unknown_routes_and_objects(client, people) -> None:
    assert_problem(await client.get("/v1/nothing-here"), 404, "not_found")
    admin = await people.create(Role.admin)
    response = await client.get("/v1/users/9a1d1c4e-3f7b-4a8e-9b2c-0d1e2f3a4b5c", headers=admin.headers)
    assert_problem(response, 404, "user_not_found")


async def test_405_for_a_method_the_route_lacks(client) -> None:
    assert_problem(await client.request("TRACE", "/healthz"), 405, "method_not_allowed")
    assert_problem(await client.delete("/v1/auth/register"), 405, "method_not_allowed")


async def test_409_when_the_state_forbids_it(client, people, mailbox) -> None:
    admin = await people.create(Role.admin)
    body = {"email": "sato@madoguchi.example.jp", "role": "consultant"}
    assert (await client.post("/v1/users", headers=admin.headers, json=body)).status_code == 201
    assert_problem(await client.post("/v1/users", headers=admin.headers, json=body), 409, "email_taken")


async def test_413_for_a_body_over_the_limit(client) -> None:
    big = {"email": "a@example.jp", "password": "x" * 70_000}
    assert_problem(await client.post("/v1/auth/register", json=big), 413, "content_too_large")


async def test_413_for_a_chunked_body_over_the_limit(client) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b'{"pad": "' + b"x" * 8192 + b'"}'

    response = await client.post(
        "/v1/auth/register", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 413, "content_too_large")


async def test_431_for_too_many_request_headers(client) -> None:
    """Issue 13: 20,000 headers were answered 200. The app refuses past the limit whatever server runs it."""
    many = [(f"x-pad-{i}", "1") for i in range(101)]
    body = assert_problem(await client.get("/healthz", headers=many), 431, "request_header_fields_too_large")
    assert body["title"] == "リクエストヘッダーが大きすぎます"
    assert (await client.get("/healthz", headers=many[:90])).status_code == 200


async def test_431_for_request_headers_too_large(client) -> None:
    big = {"X-Pad": "a" * 17_000}
    response = await client.get("/healthz", headers={**big, "Accept-Language": "en"})
    body = assert_problem(response, 431, "request_header_fields_too_large")
    assert body["title"] == "Request header fields too large" and "aaaa" not in response.text
    # A long bearer token and the usual headers are far below the limit.
    assert (
        await client.get("/healthz", headers={"Authorization": "Bearer " + "a" * 4000})
    ).status_code == 200


async def test_415_for_an_unsupported_content_type(client) -> None:
    response = await client.post(
        "/v1/auth/register", content=b"email=a", headers={"Content-Type": "text/plain"}
    )
    assert_problem(response, 415, "unsupported_media_type")


async def test_422_lists_fields_without_echoing_input(client) -> None:
    secret = "ひみつの電話番号090-1234-5678"
    response = await client.post(
        "/v1/auth/register", json={"email": secret, "password": secret, "extra": secret}
    )
    body = assert_problem(response, 422, "validation_failed")
    assert {tuple(e["loc"]) for e in body["errors"]} >= {("body", "email"), ("body", "*")}
    assert "090-1234-5678" not in response.text
    malformed = await client.post(
        "/v1/auth/register", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_problem(malformed, 422, "validation_failed")


async def test_500_is_a_generic_problem_with_request_id(app, client) -> None:
    from api.main import create_app

    broken = create_app(container=app.state.container)

    async def boom() -> None:
        raise RuntimeError("SELECT secret FROM app_user WHERE email='victim@example.jp'")

    broken.add_api_route("/boom", boom, operation_id="boom")
    transport = httpx.ASGITransport(app=broken, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/boom", headers={"X-Request-ID": "req-abcdef123456"})
    body = assert_problem(response, 500, "internal_error")
    assert body["request_id"] == "req-abcdef123456"
    assert (
        "SELECT" not in response.text
        and "victim" not in response.text
        and "RuntimeError" not in response.text
    )


async def test_503_when_the_schema_is_behind(fresh_database, smtp_server) -> None:
    from api.main import create_app

    app = create_app(make_settings(fresh_database, smtp_server[1]))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/readyz")
        assert (await http.get("/healthz")).json() == {"status": "ok"}
    assert_problem(response, 503, "migrations_pending")
    assert int(response.headers["retry-after"]) > 0
    await app.state.container.close()


async def test_503_when_the_database_is_unreachable(smtp_server) -> None:
    from api.main import create_app

    settings = make_settings(
        "postgresql://postgres@127.0.0.1:1/none", smtp_server[1], database_timeout_seconds=1
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        ready = await http.get("/readyz")
        me = await http.post(
            "/v1/auth/token", data={"username": "a@example.jp", "password": "whatever-it-is"}
        )
    assert_problem(ready, 503, "database_unavailable")
    assert_problem(me, 503, "database_unavailable")
    await app.state.container.close()


async def test_ready_and_alive(client) -> None:
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_every_response_carries_the_security_headers(client) -> None:
    response = await client.get("/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert len(response.headers["x-request-id"]) >= 8
    assert "strict-transport-security" not in response.headers  # only in production
    echoed = await client.get("/healthz", headers={"X-Request-ID": "front-end-trace-0001"})
    assert echoed.headers["x-request-id"] == "front-end-trace-0001"
    forged = await client.get("/healthz", headers={"X-Request-ID": "bad id\r\nSet-Cookie: x"})
    assert forged.headers["x-request-id"] != "bad id\r\nSet-Cookie: x"


async def test_hsts_in_production(container) -> None:
    from api.main import create_app

    settings = container.settings.model_copy(update={"env": "production", "docs_enabled": False})
    app = create_app(settings=settings, container=container)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/healthz")
        docs = await http.get("/docs")
        schema = await http.get("/openapi.json")
    assert response.headers["strict-transport-security"].startswith("max-age=")
    assert docs.status_code == 404 and schema.status_code == 404


async def test_cors_allows_only_listed_origins(client) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "Authorization"}
    allowed = await client.options("/v1/me", headers={"Origin": "https://mypage.example.jp", **preflight})
    assert allowed.headers["access-control-allow-origin"] == "https://mypage.example.jp"
    denied = await client.options("/v1/me", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in denied.headers


@pytest.mark.parametrize(
    "overrides, complaint",
    [
        ({}, "MADOGUCHI_SECRET_KEY"),
        ({"secret_key": "k" * 40}, "PostgreSQL"),
        ({"secret_key": "k" * 40}, "MADOGUCHI_KEK_FILE"),
        ({"secret_key": "k" * 40, "database_url": "postgresql://db/x", "docs_enabled": True}, "DOCS_ENABLED"),
        (
            {
                "secret_key": "k" * 40,
                "database_url": "postgresql://db/x",
                "docs_enabled": False,
                "public_url": "https://m.example",
                "mail_backend": "smtp",
                "cors_origins": ["*"],
            },
            "CORS",
        ),
        (
            {"secret_key": "k" * 40, "database_url": "postgresql://db/x", "smtp_starttls": False},
            "SMTP_STARTTLS",
        ),
        ({"secret_key": "k" * 40, "database_url": "postgresql://db/x"}, "TRUSTED_PROXIES"),
        (
            {"secret_key": "k" * 40, "database_url": "postgresql://db/x"},
            "METRICS_PORT or MADOGUCHI_METRICS_TOKEN",
        ),
    ],
)
def test_production_refuses_laptop_defaults(overrides: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        Settings(env="production", **overrides)  # type: ignore[arg-type]


def test_password_hashing_keeps_its_memory_floor_outside_tests() -> None:
    for env in ("development", "production"):
        with pytest.raises(ValueError, match="MADOGUCHI_PASSWORD_HASH_MEMORY_KIB must be at least 8192"):
            Settings(env=env, password_hash_memory_kib=8191)  # type: ignore[arg-type]
    assert Settings(env="development", password_hash_memory_kib=8192).password_hash_memory_kib == 8192
    assert Settings(env="test", password_hash_memory_kib=8).password_hash_memory_kib == 8


SECRETS = {
    "redis_url": "redis://:hunter2-redis-pass@redis.internal:6379/0",
    "smtp_password": "smtp-pass-9f8e7d",
    "database_url": "postgresql://madoguchi:db-pass-1a2b3c@db/madoguchi",
    "secret_key": "too-short-key",
}


def test_a_production_refusal_names_settings_never_values() -> None:
    """Issue 13: the refusal printed the raw settings, a Redis URL with its password among them."""
    with pytest.raises(ValueError) as refused:
        Settings(env="production", **SECRETS)  # type: ignore[arg-type]
    text = str(refused.value)
    assert "MADOGUCHI_SECRET_KEY" in text and "MADOGUCHI_DOCS_ENABLED" in text
    for value in ("hunter2", "smtp-pass", "db-pass", "too-short-key", "redis.internal"):
        assert value not in text
    with pytest.raises(ValueError) as wrong_type:
        Settings(smtp_port="hunter2-as-a-port")  # type: ignore[arg-type]
    assert "smtp_port" in str(wrong_type.value) and "hunter2" not in str(wrong_type.value)


def test_production_starts_with_real_settings() -> None:
    settings = Settings(
        env="production",
        secret_key="k" * 40,
        kek=base64.b64encode(bytes(32)).decode(),  # type: ignore[arg-type]
        database_url="postgresql://db/x",
        docs_enabled=False,  # type: ignore[arg-type]
        public_url="https://madoguchi.example.jp",
        mail_backend="smtp",
        smtp_starttls=True,
        trusted_proxies=["10.0.0.2"],  # type: ignore[arg-type]
        cors_origins=["https://mypage.example.jp"],  # type: ignore[arg-type]
        metrics_port=9100,
    )
    assert settings.staff_mfa_required and not settings.run_worker_in_process
    token_only = settings.model_copy(update={"metrics_port": None})
    assert Settings(**{**token_only.model_dump(), "metrics_token": "m" * 32}).metrics_token is not None


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    key_file = tmp_path / "key"
    key_file.write_text("from-a-file-0123456789abcdef0123456789\n")
    monkeypatch.setenv("MADOGUCHI_DATABASE_URL", "postgresql://ops@db/madoguchi")
    monkeypatch.setenv("MADOGUCHI_SECRET_KEY_FILE", str(key_file))
    monkeypatch.setenv("MADOGUCHI_SMTP_HOST", "mail.internal")
    monkeypatch.setenv("MADOGUCHI_SMTP_PORT", "2525")
    monkeypatch.setenv("MADOGUCHI_PUBLIC_URL", "https://madoguchi.example.jp")
    monkeypatch.setenv("MADOGUCHI_CORS_ORIGINS", "https://a.example.jp, https://b.example.jp")
    s = Settings()
    assert s.database_url == "postgresql://ops@db/madoguchi" and s.smtp_host == "mail.internal"
    assert s.smtp_port == 2525 and s.signing_key == b"from-a-file-0123456789abcdef0123456789"
    assert s.cors_origins == ["https://a.example.jp", "https://b.example.jp"]


def test_compose_file_describes_the_production_stack() -> None:
    """`docker compose config` needs a Docker CLI plugin CI lacks; this checks the same structure."""
    from pathlib import Path

    import yaml

    compose = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"postgres", "migrate", "api", "worker"}
    assert services["postgres"]["healthcheck"]["test"] and compose["volumes"].keys() >= {"pgdata"}
    assert (
        services["migrate"]["command"] == ["madoguchi", "migrate"] and services["migrate"]["restart"] == "no"
    )
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["api"]["healthcheck"]["test"]
    env = services["api"]["environment"]
    # Production unless a local run (README: --profile local with mailpit) says development.
    assert env["MADOGUCHI_ENV"] == "${MADOGUCHI_ENV:-production}" and env["MADOGUCHI_DOCS_ENABLED"] == "false"
    for required in ("MADOGUCHI_SECRET_KEY", "MADOGUCHI_TRUSTED_PROXIES", "MADOGUCHI_SMTP_HOST"):
        assert ":?" in env[required], f"{required} must be required, not defaulted"
    assert ":?" in services["postgres"]["environment"]["POSTGRES_PASSWORD"]


async def test_the_served_app_keeps_what_it_built_at_start_out_of_the_garbage_collectors_passes(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    """Every full pass of the cyclic collector used to walk the app's routes, schemas and reference data (about
    370 k objects): a 300 ms stall every few hundred requests. What `madoguchi serve` runs freezes them."""
    import gc

    from api import main

    build = main.create_app
    monkeypatch.setattr(main, "create_app", lambda: build(settings))
    frozen_before = gc.get_freeze_count()
    app = main.app_factory()
    try:
        assert gc.get_freeze_count() - frozen_before > 100_000
        walked = {id(o) for o in gc.get_objects()}
        assert id(app.router) not in walked and id(app.state.container) not in walked
    finally:
        gc.unfreeze()
        await app.state.container.close()
