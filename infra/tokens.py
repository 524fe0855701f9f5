"""Access tokens (JWT, HS256) and opaque tokens. The only module that imports python-jose (security.md §3)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from cryptography.fernet import Fernet
from jose import JWTError, jwt

from domain.actors import Actor, Client, Role
from domain.errors import Unauthenticated

ALGORITHMS = ["HS256"]  # pinned: the header's alg is never trusted
MAX_TOKEN_LENGTH = 4096
LEEWAY_SECONDS = 30
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit", "zip", "enc"})
REQUIRED = {
    # `exp` is required and checked in decode_access against the injected clock: python-jose only knows the
    # system clock (and `require_exp` would switch its own check back on), so it must not judge expiry; a
    # token without `exp` fails below on the missing key, like any other missing claim.
    "verify_exp": False,
    "require_iat": True,
    "require_aud": True,
    "require_iss": True,
    "require_sub": True,
    "require_jti": True,
    "verify_at_hash": False,
    "leeway": LEEWAY_SECONDS,
}


def derive_key(master: bytes, purpose: str) -> bytes:
    """One master secret, a distinct key per purpose, so a digest key can never verify an access token."""
    return hmac.new(master, b"madoguchi/" + purpose.encode(), hashlib.sha256).digest()


class TokenCodec:
    def __init__(
        self, master_key: bytes, *, issuer: str, audience: str, person_minutes: int, staff_minutes: int
    ) -> None:
        self._access_key = derive_key(master_key, "access-token")
        self._digest_key = derive_key(master_key, "opaque-digest")
        self._sealer = Fernet(base64.urlsafe_b64encode(derive_key(master_key, "outbox-seal")))
        self.issuer = issuer
        self.audience = audience
        self.person_ttl = timedelta(minutes=person_minutes)
        self.staff_ttl = timedelta(minutes=staff_minutes)

    # -- TokenIssuer port --------------------------------------------------------------------

    def access_token(self, actor: Actor, *, now: datetime) -> tuple[str, int]:
        ttl = self.staff_ttl if actor.is_staff else self.person_ttl
        claims: dict[str, object] = {
            "iss": self.issuer,
            "aud": self.audience,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
            "jti": uuid.uuid4().hex,
            "typ": "access",
            "cli": actor.client.value,
        }
        if actor.is_person:
            assert actor.role is not None, "a person always has a role"
            claims.update(
                sub=str(actor.user_id), sid=str(actor.session_id), role=actor.role.value, mfa=actor.mfa
            )
        else:
            claims.update(sub=f"client:{actor.service_client_id}", scope=" ".join(sorted(actor.scopes)))
        return jwt.encode(claims, self._access_key, algorithm=ALGORITHMS[0]), int(ttl.total_seconds())

    def new_opaque(self) -> str:
        return secrets.token_urlsafe(32)  # 256 bits

    def digest(self, opaque: str) -> str:
        return hmac.new(self._digest_key, opaque.encode(), hashlib.sha256).hexdigest()

    def seal(self, value: str) -> str:
        return self._sealer.encrypt(value.encode()).decode()

    def unseal(self, sealed: str) -> str:
        return self._sealer.decrypt(sealed.encode()).decode()

    # -- verification ------------------------------------------------------------------------

    def decode_access(self, token: str, *, now: datetime) -> tuple[Actor, datetime]:
        """Return the actor the token names and when it was issued; any defect is one 401."""
        if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise Unauthenticated("invalid_token")
        actor, issued_at, expires = self._verified(token)
        # The signature and claims were checked once for this exact string; time moves on, so check it again.
        if now.timestamp() >= expires + LEEWAY_SECONDS or issued_at > now + timedelta(seconds=LEEWAY_SECONDS):
            raise Unauthenticated("invalid_token")
        return actor, issued_at

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one codec per process; bounded; failures are not cached
    def _verified(self, token: str) -> tuple[Actor, datetime, int]:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in ALGORITHMS or FORBIDDEN_HEADERS & header.keys():
                raise Unauthenticated("invalid_token")
            claims = jwt.decode(
                token,
                self._access_key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options=REQUIRED,
            )
        except (JWTError, ValueError, TypeError) as exc:
            raise Unauthenticated("invalid_token") from exc
        try:
            issued_at = datetime.fromtimestamp(int(claims["iat"]), UTC)
            expires = int(claims["exp"])
            if claims.get("typ") != "access":
                raise Unauthenticated("invalid_token")
            client = Client(claims["cli"])
            subject = str(claims["sub"])
            if subject.startswith("client:"):
                if client not in (Client.line, Client.chatbot, Client.service):
                    raise Unauthenticated("invalid_token")
                actor = Actor(
                    client=client,
                    scopes=frozenset(str(claims.get("scope", "")).split()),
                    service_client_id=subject.removeprefix("client:"),
                )
            else:
                role = Role(claims["role"])
                expected = Client.staff if role.is_staff else Client.web
                if client is not expected:
                    raise Unauthenticated("invalid_token")
                actor = Actor(
                    client=client,
                    user_id=uuid.UUID(subject),
                    session_id=uuid.UUID(str(claims["sid"])),
                    role=role,
                    mfa=bool(claims.get("mfa", False)),
                )
        except (KeyError, ValueError, TypeError) as exc:
            raise Unauthenticated("invalid_token") from exc
        return actor, issued_at, expires
