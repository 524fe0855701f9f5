"""The python-jose traps of security.md §3, against the one decoding function the API uses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt

from domain.actors import Actor, Client, Role
from domain.errors import Unauthenticated
from infra.tokens import TokenCodec, derive_key

MASTER = b"unit-test-master-key-0123456789abcdef"
# Expiry is checked against the injected clock, not the machine's: a fixed instant years away works.
NOW = datetime(2024, 2, 29, 14, 59, tzinfo=UTC)


@pytest.fixture
def codec() -> TokenCodec:
    return TokenCodec(
        MASTER, issuer="madoguchi", audience="madoguchi-api", person_minutes=15, staff_minutes=10
    )


def person() -> Actor:
    return Actor(client=Client.web, user_id=uuid.uuid4(), session_id=uuid.uuid4(), role=Role.consulter)


def claims(**overrides: object) -> dict[str, object]:
    actor = person()
    base: dict[str, object] = {
        "iss": "madoguchi",
        "aud": "madoguchi-api",
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(minutes=5)).timestamp()),
        "jti": uuid.uuid4().hex,
        "typ": "access",
        "cli": "web",
        "sub": str(actor.user_id),
        "sid": str(actor.session_id),
        "role": "consulter",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(
    payload: dict[str, object], key: bytes | str = derive_key(MASTER, "access-token"), **kw: object
) -> str:
    return jwt.encode(payload, key, algorithm="HS256", **kw)  # type: ignore[arg-type]


def b64(data: dict[str, object] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def hmac_signed(payload: dict[str, object], secret: bytes) -> str:
    """Algorithm confusion by hand (jose >= 3.4 refuses to sign it): HS256 keyed with a public key."""
    signing_input = b64({"alg": "HS256", "typ": "JWT"}) + "." + b64(payload)
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


def test_round_trip(codec: TokenCodec) -> None:
    actor = person()
    token, ttl = codec.access_token(actor, now=NOW)
    decoded, _ = codec.decode_access(token, now=NOW + timedelta(minutes=14))
    assert decoded == actor and ttl == 15 * 60


def test_expiry_follows_the_injected_clock(codec: TokenCodec) -> None:
    """The same token string: valid while the clock is inside its lifetime, refused once past it (the
    verification cache must not keep an expired token alive)."""
    token, _ = codec.access_token(person(), now=NOW)
    codec.decode_access(token, now=NOW + timedelta(minutes=15))  # within the 30 s leeway
    with pytest.raises(Unauthenticated):
        codec.decode_access(token, now=NOW + timedelta(minutes=16))
    with pytest.raises(Unauthenticated):
        codec.decode_access(token, now=NOW - timedelta(minutes=5))  # issued "in the future"


def test_staff_tokens_are_shorter(codec: TokenCodec) -> None:
    staff = Actor(client=Client.staff, user_id=uuid.uuid4(), session_id=uuid.uuid4(), role=Role.consultant)
    assert codec.access_token(staff, now=NOW)[1] == 10 * 60


def test_a_well_formed_hand_signed_token_is_accepted(codec: TokenCodec) -> None:
    """Guards the forged cases below: each differs from this accepted token in one respect only."""
    actor, _ = codec.decode_access(sign(claims()), now=NOW)
    assert actor.role is Role.consulter


def _rsa_public_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


FORGERIES = {
    "alg_none": lambda: b64({"alg": "none", "typ": "JWT"}) + "." + b64(claims()) + ".",
    "wrong_key": lambda: sign(claims(), b"another-key-entirely-0123456789abcdef"),
    "master_key_not_derived": lambda: sign(claims(), MASTER),
    "hs256_with_public_key": lambda: hmac_signed(claims(), _rsa_public_pem()),
    "expired": lambda: sign(
        claims(
            iat=int((NOW - timedelta(hours=1)).timestamp()), exp=int((NOW - timedelta(minutes=1)).timestamp())
        )
    ),
    "missing_exp": lambda: sign(claims(exp=None)),
    "missing_iat": lambda: sign(claims(iat=None)),
    "missing_aud": lambda: sign(claims(aud=None)),
    "wrong_aud": lambda: sign(claims(aud="someone-else")),
    "missing_iss": lambda: sign(claims(iss=None)),
    "wrong_iss": lambda: sign(claims(iss="https://evil.example")),
    "missing_jti": lambda: sign(claims(jti=None)),
    "refresh_type": lambda: sign(claims(typ="refresh")),
    "issued_in_future": lambda: sign(
        claims(
            iat=int((NOW + timedelta(minutes=10)).timestamp()),
            exp=int((NOW + timedelta(minutes=20)).timestamp()),
        )
    ),
    "staff_role_on_web_client": lambda: sign(claims(role="admin")),
    "unknown_role": lambda: sign(claims(role="root")),
    "jku_header": lambda: sign(claims(), headers={"jku": "https://evil.example/keys"}),
    "opaque_refresh_token": lambda: "rSaddmG6ePT677lX5bpyi2mafo4z3F-4UhoNM9V9zqo",
    "garbage": lambda: "a.b.c",
    "oversized": lambda: "a" * 5000 + ".b.c",
}


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_forged_or_defective_tokens_are_refused(codec: TokenCodec, name: str) -> None:
    with pytest.raises(Unauthenticated) as info:
        codec.decode_access(FORGERIES[name](), now=NOW)
    assert info.value.code == "invalid_token"


def test_opaque_digests_are_keyed(codec: TokenCodec) -> None:
    other = TokenCodec(
        b"x" * 32, issuer="madoguchi", audience="madoguchi-api", person_minutes=15, staff_minutes=10
    )
    raw = codec.new_opaque()
    assert (
        len(raw) >= 43 and codec.digest(raw) != other.digest(raw) and codec.digest(raw) == codec.digest(raw)
    )
