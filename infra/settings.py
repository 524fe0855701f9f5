"""Settings from the environment (prefix MADOGUCHI_). Development defaults run out of the box; production
refuses to start on anything that is only fit for a laptop."""

from __future__ import annotations

import difflib
import enum
import os
from collections.abc import Mapping
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from infra.crypto import parse_keks

DEV_SECRET = "dev-insecure-secret-key-change-me-0123456789abcdef"  # noqa: S105 - refused in production


PREFIX = "MADOGUCHI_"
# Argon2id memory outside tests: OWASP's smallest listed profile is m=7 MiB with t=5; below 8 MiB is refused.
PASSWORD_HASH_FLOOR_KIB = 8_192
DOTENV = Path(".env")
# MADOGUCHI_* names that are not settings: docker-compose.yml interpolates these, the test harness reads these.
NOT_SETTINGS = frozenset({"MADOGUCHI_TAG", "MADOGUCHI_PUBLISH", "MADOGUCHI_WORKERS"})
NOT_SETTINGS_PREFIXES = ("MADOGUCHI_TEST_",)


class Environment(enum.StrEnum):
    development = "development"
    test = "test"
    production = "production"


class MailBackend(enum.StrEnum):
    smtp = "smtp"
    console = "console"
    file = "file"


class Settings(BaseSettings):
    # hide_input_in_errors: a refusal names the setting, never its value. Without it pydantic prints the input
    # (for the production guard, every setting: the probe saw a Redis URL with its password in the log).
    model_config = SettingsConfigDict(
        env_prefix="MADOGUCHI_", env_file=None, extra="ignore", hide_input_in_errors=True
    )

    env: Environment = Environment.development
    database_url: str = "sqlite+aiosqlite:///./madoguchi.db"
    database_pool_size: int = Field(20, ge=1, le=200)
    database_timeout_seconds: float = Field(5.0, gt=0)
    database_pool: bool = True  # false behind an external pooler (pgbouncer) or for one-loop-per-call clients

    secret_key: SecretStr = SecretStr(DEV_SECRET)
    secret_key_file: Path | None = None
    # Key-encryption keys for the per-case data keys (issue 17; infra/crypto.py): base64 of 32 random bytes,
    # the current one first, comma- or line-separated, previous ones after it until `madoguchi rotate-keys`
    # has re-wrapped every data key. Required in production; elsewhere derived from the master secret.
    kek: SecretStr | None = None
    kek_file: Path | None = None
    jwt_issuer: str = "madoguchi"
    jwt_audience: str = "madoguchi-api"
    access_token_minutes: int = Field(15, ge=1, le=15)
    staff_access_token_minutes: int = Field(10, ge=1, le=15)
    refresh_session_days: int = Field(30, ge=1, le=90)

    public_url: str = "http://127.0.0.1:8000"
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    # The request head (request line and headers): a bearer token is about 1 KiB, so 16 KiB and 100 headers
    # leave room for any proxy's additions and refuse what only an attack sends (431).
    max_header_bytes: int = Field(16_384, ge=4096, le=1_048_576)
    max_headers: int = Field(100, ge=20, le=1000)
    docs_enabled: bool = True
    require_staff_mfa: bool | None = None

    password_hash_concurrency: int = Field(4, ge=1, le=64)
    # At least 8 MiB (PASSWORD_HASH_FLOOR_KIB) except in the test environment, whose suites hash thousands of
    # test passwords: there Argon2's own minimum (8 KiB) is allowed.
    password_hash_memory_kib: int = Field(19_456, ge=8)
    password_hash_iterations: int = Field(2, ge=1)
    # Sign-in throttling (README "Sign-in throttling"): per (account, client) pair in the window ...
    login_max_failures: int = Field(10, ge=1, le=100)
    # ... per client across accounts (carriers put many phones behind one address, so the bar is higher) ...
    login_max_failures_per_address: int = Field(30, ge=1, le=1000)
    login_window_minutes: int = Field(15, ge=1)
    # ... and per account across clients, in a longer window: past it only clients with no failure on the
    # account get their password checked, so the owner is never locked out by a stranger.
    login_max_failures_per_account: int = Field(20, ge=1, le=10_000)
    login_account_window_minutes: int = Field(60, ge=1)
    # Step-up (issue 17 §3, ASVS 7.5.1): how long a sign-in or a re-entered password counts as a fresh proof
    # of identity for sensitive account actions.
    step_up_max_age_minutes: int = Field(5, ge=1, le=60)
    signup_per_hour: int = Field(20, ge=1)
    # Mails an outsider can cause (verification, reset, invitation, "already registered") per recipient.
    mail_per_recipient_per_hour: int = Field(3, ge=1, le=100)
    triage_per_minute: int = Field(20, ge=1)

    mail_backend: MailBackend = MailBackend.console
    mail_from: str = "madoguchi <no-reply@madoguchi.invalid>"
    mail_file_dir: Path = Path("./var/mail")
    smtp_host: str = "localhost"
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_tls: bool = False  # implicit TLS (usually port 465)
    smtp_timeout_seconds: float = 10.0

    worker_in_process: bool | None = None
    worker_poll_seconds: float = Field(2.0, gt=0)
    outbox_max_attempts: int = Field(8, ge=1)
    # A worker leases one row at a time and renews the lease while it sends; a worker that dies holds that row
    # until the lease runs out, then another worker retakes it. Keep it above a few seconds: renewals every
    # third of it must get through while a send runs.
    worker_lease_seconds: float = Field(30.0, ge=0.5, le=300)

    terms_version: str = "2026-11"
    first_answer_business_days: int = Field(3, ge=1, le=30)
    reopen_window_days: int = Field(30, ge=0, le=365)
    consultations_per_hour: int = Field(5, ge=1)
    storage_dir: Path = Path("./var/evidence")
    max_upload_bytes: int = Field(10 * 1_048_576, ge=1024)
    # Chain of custody (issue 16 §3): heads are time-stamped by an RFC 3161 TSA when both are set; the CA file
    # (PEM, the TSA's root and any intermediates) is what a token is checked against.
    tsa_url: str | None = None
    tsa_ca_file: Path | None = None
    tsa_timeout_seconds: float = Field(10.0, gt=0, le=120)
    tsa_stamp_minutes: float = Field(60.0, gt=0)  # how often the worker stamps heads that moved
    evidence_items_per_consultation: int = Field(100, ge=1)
    evidence_bytes_per_consultation: int = Field(100 * 1_048_576, ge=1024)
    evidence_bytes_per_consulter: int = Field(300 * 1_048_576, ge=1024)
    consulter_messages_per_hour: int = Field(30, ge=1)
    # Evidence images (issue 16): PDQ hashes below this quality are refused (too featureless to match on), and
    # two items whose PDQ hashes differ in at most this many of 256 bits are linked for staff.
    pdq_min_quality: int = Field(50, ge=0, le=100)
    pdq_match_distance: int = Field(31, ge=0, le=128)

    # LINE official account (issue 6). Without a channel secret the webhook answers 503; the secret and the
    # access token are SecretStr so they never show in reprs or logs. The Messaging API base URLs are
    # configurable so tests (and a relay, if ever needed) can stand in for LINE.
    line_channel_secret: SecretStr | None = None
    line_channel_access_token: SecretStr | None = None
    line_api_base_url: str = "https://api.line.me"
    line_data_api_base_url: str = "https://api-data.line.me"  # rich-menu images go to the data host
    line_login_url: str | None = None  # the my-page linking page; default PUBLIC_URL + /line/link
    line_bot_user_id: str | None = None  # when set, webhooks for another `destination` are refused
    line_max_attempts: int = Field(6, ge=1, le=50)
    line_retry_base_seconds: float = Field(2.0, ge=0)
    line_reply_window_seconds: float = Field(50.0, gt=0, le=60)  # reply tokens expire about a minute in
    line_request_timeout_seconds: float = Field(10.0, gt=0)
    line_link_nonce_minutes: int = Field(10, ge=1, le=60)

    # Homepage chatbot (issue 7): anonymous sessions with a sliding idle timeout (capped at 4 hours after the
    # start), rate limits per client address, and transcripts purged by the worker after the retention period.
    chatbot_session_minutes: int = Field(30, ge=1, le=240)
    chatbot_sessions_per_hour: int = Field(30, ge=1)
    chatbot_turns_per_minute: int = Field(30, ge=1)
    chatbot_retention_days: int = Field(30, ge=1, le=3650)
    # A person's export (issue 17 §3): downloadable once within this many days, then deleted.
    export_lifetime_days: int = Field(7, ge=1, le=30)
    exports_open_per_person: int = Field(1, ge=1, le=10)

    # Shared counters (rate limits, throttles) across replicas: in Redis when set, else in the database. Keys
    # start with the prefix, so one Redis can serve several deployments (or test runs).
    redis_url: SecretStr | None = None
    redis_prefix: str = Field("madoguchi:", min_length=1, max_length=100)
    redis_timeout_seconds: float = Field(2.0, gt=0, le=30)

    # Evidence in S3-compatible object storage when the bucket is set, else in STORAGE_DIR. Objects are written
    # private (no ACL, no public URL): downloads go through the API's authorization. Without an access key the
    # usual AWS credential chain (environment, instance role) applies.
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_prefix: str = Field("evidence/", max_length=200)
    s3_timeout_seconds: float = Field(10.0, gt=0, le=120)
    log_level: str = "INFO"
    # One JSON line per request (request id, route template, status, duration, caller role). uvicorn's own
    # access log (client address, query string) is never written.
    access_log: bool = True

    # Metrics (README "Operations"): on their own port (served by `madoguchi serve`'s supervising process for
    # all its workers, and by `madoguchi worker`), and/or behind a bearer token. With a token and no port they
    # are at GET /metrics on the API's port. Production refuses to start with neither.
    metrics_port: int | None = Field(None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"
    metrics_token: SecretStr | None = None
    # Tracing (OpenTelemetry): off unless an OTLP/HTTP endpoint is set, e.g. http://otel-collector:4318.
    otlp_endpoint: str | None = None
    trace_sample_ratio: float = Field(1.0, ge=0.0, le=1.0)

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip().startswith("["):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator(
        "redis_url",
        "s3_bucket",
        "s3_endpoint_url",
        "s3_access_key_id",
        "s3_secret_access_key",
        "kek",
        "kek_file",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # Compose passes optional variables as empty strings: empty means "not configured".
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _password_hash_floor(self) -> Settings:
        if self.env != Environment.test and self.password_hash_memory_kib < PASSWORD_HASH_FLOOR_KIB:
            raise ValueError(
                f"MADOGUCHI_PASSWORD_HASH_MEMORY_KIB must be at least {PASSWORD_HASH_FLOOR_KIB} outside tests"
            )
        return self

    @model_validator(mode="after")
    def _production_guard(self) -> Settings:
        if self.env != Environment.production:
            return self
        problems = []
        if self.signing_key in (DEV_SECRET.encode(), b"") or len(self.signing_key) < 32:
            problems.append("MADOGUCHI_SECRET_KEY (or _FILE) must be set to at least 32 random bytes")
        if self.kek is None and self.kek_file is None:
            problems.append("MADOGUCHI_KEK_FILE (or MADOGUCHI_KEK) must hold the key-encryption key")
        if self.database_url.startswith("sqlite"):
            problems.append("MADOGUCHI_DATABASE_URL must point at PostgreSQL, not SQLite")
        if "*" in self.cors_origins:
            problems.append("MADOGUCHI_CORS_ORIGINS must be an allowlist, not *")
        if self.docs_enabled:
            problems.append("MADOGUCHI_DOCS_ENABLED must be false")
        if not self.public_url.startswith("https://"):
            problems.append("MADOGUCHI_PUBLIC_URL must be https")
        if self.mail_backend != MailBackend.smtp:
            problems.append("MADOGUCHI_MAIL_BACKEND must be smtp")
        if not (self.smtp_starttls or self.smtp_tls):
            problems.append(
                "MADOGUCHI_SMTP_STARTTLS or MADOGUCHI_SMTP_TLS must be on (mail carries sign-in links)"
            )
        if not self.trusted_proxies:
            problems.append(
                "MADOGUCHI_TRUSTED_PROXIES must name the TLS proxy in front of the API (rate limits key on the "
                "client address)"
            )
        if self.line_channel_secret is not None and not self.line_api_base_url.startswith("https://"):
            problems.append("MADOGUCHI_LINE_API_BASE_URL must be https")
        if self.require_staff_mfa is False:
            problems.append("MADOGUCHI_REQUIRE_STAFF_MFA cannot be false")
        if self.metrics_port is None and self.metrics_token is None:
            problems.append(
                "MADOGUCHI_METRICS_PORT or MADOGUCHI_METRICS_TOKEN must be set (metrics must not be public)"
            )
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self

    @field_validator("kek")
    @classmethod
    def _valid_keks(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_keks(
                value.get_secret_value()
            )  # a malformed key is reported at start, by the setting's name
        return value

    @field_validator("metrics_token")
    @classmethod
    def _long_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 24:
            raise ValueError("must be at least 24 characters")
        return value

    @cached_property
    def signing_key(self) -> bytes:
        if self.secret_key_file is not None:
            return self.secret_key_file.read_bytes().strip()
        return self.secret_key.get_secret_value().encode()

    @classmethod
    def from_environment(cls) -> Settings:
        """Settings as the commands and the server read them: the environment and, outside production, a
        `.env` file in the working directory (the environment wins over the file)."""
        production = os.environ.get(PREFIX + "ENV", "").strip().lower() == Environment.production
        if production or not DOTENV.is_file():
            return cls()
        return cls(_env_file=DOTENV, _env_file_encoding="utf-8")

    @classmethod
    def known_names(cls) -> frozenset[str]:
        return frozenset(PREFIX + name.upper() for name in cls.model_fields)

    @classmethod
    def unknown_names(cls, environ: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
        """MADOGUCHI_* names no setting reads (a typo is otherwise silently ignored), each with the closest
        known name if one is near. Names only: a value can be a secret."""
        environ = os.environ if environ is None else environ
        names = set(environ)
        production = environ.get(PREFIX + "ENV", "").strip().lower() == Environment.production
        if not production and DOTENV.is_file():
            from dotenv import dotenv_values

            names |= set(dotenv_values(DOTENV))
        known = cls.known_names()
        unknown = sorted(
            n
            for n in names
            if n.upper().startswith(PREFIX)
            and n.upper() not in known
            and n.upper() not in NOT_SETTINGS
            and not n.upper().startswith(NOT_SETTINGS_PREFIXES)
        )
        suffixes = {k[len(PREFIX) :]: k for k in known}

        def near(name: str) -> str | None:
            close = difflib.get_close_matches(name.upper()[len(PREFIX) :], suffixes, n=1, cutoff=0.75)
            return suffixes[close[0]] if close else None

        return [(n, near(n)) for n in unknown]

    @property
    def is_production(self) -> bool:
        return self.env == Environment.production

    @property
    def staff_mfa_required(self) -> bool:
        return self.is_production if self.require_staff_mfa is None else self.require_staff_mfa

    @property
    def worker_lease(self) -> timedelta:
        return timedelta(seconds=self.worker_lease_seconds)

    @property
    def run_worker_in_process(self) -> bool:
        return (not self.is_production) if self.worker_in_process is None else self.worker_in_process
