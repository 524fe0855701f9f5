"""Account use cases: registration, verification, sign-in, token rotation, sessions, TOTP, staff admin."""

from __future__ import annotations

import ipaddress
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from domain.actors import Actor, Client, Role
from domain.consultations import Cursor
from domain.errors import (
    Conflict,
    NotFound,
    PreconditionFailed,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
)
from domain.models import (
    AuthSession,
    EmailToken,
    EmailTokenPurpose,
    Locale,
    RefreshToken,
    ServiceClient,
    User,
)
from domain.policy import STAFF, ensure_admin, ensure_staff
from domain.ports import (
    AccountUnitOfWork,
    Clock,
    PasswordHasher,
    SessionLookup,
    Throttle,
    TokenIssuer,
    TotpVerifier,
    UnitOfWorkFactory,
)
from domain.text import nfkc, normalise_email

PASSWORD_MIN = 8
PASSWORD_MAX = 128
# Outbox kinds for the account requests an anonymous caller makes; the worker completes them.
REGISTRATION = "account.registration"
PASSWORD_RESET = "account.password_reset"  # noqa: S105 - an outbox kind, not a secret
EMAIL_CHANGE = "account.email_change"


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    session_lifetime: timedelta = timedelta(days=30)
    staff_session_lifetime: timedelta = timedelta(hours=12)
    verification_lifetime: timedelta = timedelta(hours=48)
    reset_lifetime: timedelta = timedelta(hours=1)
    invite_lifetime: timedelta = timedelta(hours=72)
    max_failures: int = 10
    failure_window: timedelta = timedelta(minutes=15)
    require_staff_mfa: bool = False
    step_up_max_age: timedelta = timedelta(minutes=5)
    email_change_lifetime: timedelta = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str | None
    scope: str | None = None


@dataclass(frozen=True, slots=True)
class StepUp:
    """A fresh proof of identity on the caller's session: what it was (`amr`, RFC 8176) and until when it
    counts for sensitive actions."""

    auth_time: datetime
    valid_until: datetime
    amr: tuple[str, ...]


class StepUpRequired(Unauthenticated):
    """The action needs a proof of identity younger than `max_age` seconds (RFC 9470); the API answers 401
    with `WWW-Authenticate: Bearer error="insufficient_user_authentication", max_age=…`."""

    def __init__(self, max_age: timedelta) -> None:
        super().__init__("step_up_required", max_age=int(max_age.total_seconds()))
        self.max_age = int(max_age.total_seconds())


def ensure_fresh_proof(actor: Actor, now: datetime, max_age: timedelta) -> None:
    """ASVS 7.5.1: sensitive account actions need the person to have proven who they are (signed in, or
    stepped up with the password and, for staff who use one, the TOTP code) within `max_age`. A service
    client, or an actor whose session says nothing of it, never passes."""
    if not actor.is_person or actor.auth_time is None or now - actor.auth_time > max_age:
        raise StepUpRequired(max_age)


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    secret: str
    provisioning_uri: str


def check_password(password: str, hasher: PasswordHasher, *, context: Sequence[str] = ()) -> None:
    """ASVS V6.2: length 8..128 with no composition rules, no truncation, common passwords refused."""
    if len(password) < PASSWORD_MIN:
        raise ValidationFailed("password_too_short", field="password")
    if len(password) > PASSWORD_MAX:
        raise ValidationFailed("password_too_long", field="password")
    lowered = nfkc(password).lower()
    if hasher.is_common(lowered) or any(c and lowered == nfkc(c).lower() for c in context):
        raise ValidationFailed("password_too_common", field="password")


class AccountService:
    def __init__(
        self,
        uow: UnitOfWorkFactory[AccountUnitOfWork],
        hasher: PasswordHasher,
        tokens: TokenIssuer,
        totp: TotpVerifier,
        throttle: Throttle,
        clock: Clock,
        policy: AuthPolicy,
        sessions: SessionLookup,
        signup_throttle: Throttle | None = None,
        mail_throttle: Throttle | None = None,
    ) -> None:
        self.sessions = sessions
        self.signup_throttle = signup_throttle
        self.mail_throttle = mail_throttle
        self.uow = uow
        self.hasher = hasher
        self.tokens = tokens
        self.totp = totp
        self.throttle = throttle
        self.clock = clock
        self.policy = policy

    # -- registration and e-mail tokens ---------------------------------------------------------

    async def _limit(self, throttle: Throttle | None, keys: Sequence[str], code: str) -> None:
        if throttle is None or not keys:
            return
        wait = await throttle.attempt(keys, now=self.clock.now())
        if wait:
            raise RateLimited(wait, code)

    async def register(
        self, email: str, password: str, display_name: str | None, locale: Locale, *, address: str | None
    ) -> None:
        """Same work and the same answer whether or not the address is known (no enumeration, not even by
        timing): the request checks and hashes the password and queues one sealed outbox row; the worker
        decides (`complete_registration`) whether that means a new pending account, a fresh link for a
        pending one, or a note to the owner of an existing account. The password waits with the mailed token
        and reaches the account only when that token is used, so registering someone else's address can
        neither take over a pending account nor test whether one exists."""
        # Sign-ups per client address are capped so nobody can flood inboxes or probe addresses.
        await self._limit(self.signup_throttle, self._client_keys("signup", address), "too_many_attempts")
        email = normalise_email(email)
        check_password(password, self.hasher, context=(email, email.split("@")[0]))
        password_hash = await self.hasher.hash(password)
        display_name = display_name or None  # stored as written
        request = {
            "email": email,
            "password_hash": password_hash,
            "display_name": display_name,
            "locale": locale.value,
        }
        async with self.uow() as uow:
            # Sealed: a copy of the database alone says neither who registered nor the password's hash.
            await uow.outbox.put(REGISTRATION, {"sealed": self.tokens.seal(json.dumps(request))})
            await uow.commit()

    async def complete_registration(self, payload: Mapping[str, Any]) -> None:
        """The worker's half of `register`, off the request path."""
        request = json.loads(self.tokens.unseal(str(payload["sealed"])))
        email = str(request["email"])
        # Every outcome mails this address, so the cap is counted first (and outside the unit of work).
        if not await self._may_mail(email):
            return
        now = self.clock.now()
        async with self.uow() as uow:
            existing = await uow.users.get_by_email(email)
            if existing is None:
                display_name = request.get("display_name")
                user = User(
                    id=uuid.uuid4(),
                    email=email,
                    role=Role.consulter,
                    password_hash=None,
                    display_name=display_name or None,
                    locale=Locale(request["locale"]),
                    created_at=now,
                    updated_at=now,
                )
                await uow.users.add(user)
                await self._mail_token(
                    uow, user, EmailTokenPurpose.verify_email, now, request["password_hash"]
                )
            elif existing.email_verified_at is None and existing.role is Role.consulter:
                # Registered again before verifying: a fresh link, carrying this registration's password.
                await self._mail_token(
                    uow, existing, EmailTokenPurpose.verify_email, now, request["password_hash"]
                )
            else:
                await uow.outbox.put("mail.account_exists", {"user_id": str(existing.id)}, dedupe_key=None)
            await uow.commit()

    async def _may_mail(self, email: str) -> bool:
        """Mails an outsider can trigger (verification, reset, invitation, "already registered") are capped
        per recipient, so the centre cannot be used to flood someone's inbox. Over the cap the mail is
        simply not sent: the request that asked for it was answered long before, identically."""
        if self.mail_throttle is None:
            return True
        wait = await self.mail_throttle.attempt(["mailto:" + self.tokens.digest(email)], now=self.clock.now())
        return wait == 0

    async def _mail_token(
        self,
        uow: AccountUnitOfWork,
        user: User,
        purpose: EmailTokenPurpose,
        now: datetime,
        password_hash: str | None = None,
        *,
        sealed_request: str | None = None,
        to: str | None = None,
    ) -> None:
        """`to` (sealed) sends the link to another address than the account's own: a new address being
        confirmed."""
        raw = self.tokens.new_opaque()
        lifetime = {
            EmailTokenPurpose.invite: self.policy.invite_lifetime,
            EmailTokenPurpose.password_reset: self.policy.reset_lifetime,
            EmailTokenPurpose.change_email: self.policy.email_change_lifetime,
        }.get(purpose, self.policy.verification_lifetime)
        await uow.email_tokens.add(
            EmailToken(
                id=uuid.uuid4(),
                user_id=user.id,
                purpose=purpose,
                digest=self.tokens.digest(raw),
                expires_at=now + lifetime,
                password_hash=password_hash,
                sealed_request=sealed_request,
            )
        )
        # The raw token waits in the outbox sealed, so a copy of the database alone cannot use it.
        payload = {"user_id": str(user.id), "token": self.tokens.seal(raw)}
        if to is not None:
            payload["to"] = to
        await uow.outbox.put(f"mail.{purpose.value}", payload)

    async def _use_token(
        self, uow: AccountUnitOfWork, token: str, purposes: set[EmailTokenPurpose], now: datetime
    ) -> tuple[EmailToken, User]:
        record = await uow.email_tokens.get_by_digest(self.tokens.digest(token))
        if (
            record is None
            or record.purpose not in purposes
            or record.used_at is not None
            or record.expires_at <= now
        ):
            raise ValidationFailed("invalid_or_expired_token", field="token")
        user = await uow.users.get(record.user_id)
        if user is None or not user.is_active or not await uow.email_tokens.consume(record.id, at=now):
            raise ValidationFailed("invalid_or_expired_token", field="token")
        # One link works once and makes every older link of the same kind useless.
        await uow.email_tokens.consume_all(user.id, record.purpose, at=now)
        return record, user

    async def verify_email(self, token: str, password: str | None = None) -> None:
        """Confirm an address (the password chosen at that registration takes effect) or accept a staff
        invitation (the password is set here)."""
        now = self.clock.now()
        async with self.uow() as uow:
            purposes = {EmailTokenPurpose.verify_email, EmailTokenPurpose.invite}
            record, user = await self._use_token(uow, token, purposes, now)
            if record.purpose is EmailTokenPurpose.invite:
                if password is None:
                    raise ValidationFailed("password_required", field="password")
                check_password(password, self.hasher, context=(user.email, user.email.split("@")[0]))
                user.password_hash = await self.hasher.hash(password)
            else:
                user.password_hash = record.password_hash
            user.email_verified_at = user.email_verified_at or now
            user.updated_at = now
            await uow.users.update(user)
            await uow.commit()

    async def request_password_reset(self, email: str, *, address: str | None) -> None:
        """Same answer and the same work for every address: one sealed outbox row. The worker decides
        (`complete_password_reset`) whether a link is minted and mailed; an unknown address is dropped
        there, silently. Also the way out of a sign-in throttle."""
        await self._limit(self.signup_throttle, self._client_keys("reset", address), "too_many_attempts")
        sealed = self.tokens.seal(normalise_email(email))
        async with self.uow() as uow:
            await uow.outbox.put(PASSWORD_RESET, {"sealed": sealed})
            await uow.commit()

    async def complete_password_reset(self, payload: Mapping[str, Any]) -> None:
        """The worker's half of `request_password_reset`."""
        email = self.tokens.unseal(str(payload["sealed"]))
        async with self.uow() as uow:
            user = await uow.users.get_by_email(email)
        if user is None or not user.is_active or user.email_verified_at is None:
            return
        if not await self._may_mail(user.email):
            return
        async with self.uow() as uow:
            await self._mail_token(uow, user, EmailTokenPurpose.password_reset, self.clock.now())
            await uow.commit()

    async def reset_password(self, token: str, password: str) -> None:
        now = self.clock.now()
        async with self.uow() as uow:
            _, user = await self._use_token(uow, token, {EmailTokenPurpose.password_reset}, now)
            check_password(password, self.hasher, context=(user.email, user.email.split("@")[0]))
            user.password_hash = await self.hasher.hash(password)
            user.updated_at = now
            await uow.users.update(user)
            await uow.sessions.revoke_all_for_user(user.id, at=now, reason="password_reset")
            await uow.commit()
        # A reset ends any "under attack" state and every client's failures on the account.
        keys = self._sign_in_keys(user.email, None)
        await self.throttle.clear([keys.account])
        await self.throttle.clear_prefix(keys.pair.rsplit(":", 1)[0] + ":")

    # -- sign-in -------------------------------------------------------------------------------

    def _client_keys(self, prefix: str, address: str | None) -> list[str]:
        return [f"{prefix}:{client_group(address)}"] if address else []

    def _sign_in_keys(self, name: str, address: str | None) -> SignInKeys:
        account = self.tokens.digest(name)
        group = client_group(address)
        # Keyed digests: the throttle table alone links no account to an address.
        return SignInKeys(
            pair=f"pair:{account[:40]}:{self.tokens.digest(group)[:40]}",
            address=f"addr:{group}",
            account=f"acct:{account}",
        )

    async def _admit(self, keys: SignInKeys) -> None:
        """Counted before the password is checked, so parallel guesses cannot all pass a check that comes
        later. Guessing is bounded per (account, client) pair and per client; the per-account count never
        locks the owner out: past it, the account is "under attack" and a password is checked only when it
        comes from a client with no failure on this account in its window. A stranger can make the
        account harder to reach from addresses that guessed, never from the owner's own."""
        pair, address, account = await self.throttle.count(
            [keys.pair, keys.address, keys.account], now=self.clock.now()
        )
        wait = max(pair.wait, address.wait)
        if wait:
            raise RateLimited(wait, "too_many_attempts")
        if account.wait and pair.attempts > 1:
            # Under attack and this client already failed here: its next check is when its own window ends.
            raise RateLimited(min(pair.resets_in, account.resets_in) or 1, "too_many_attempts")

    async def _succeeded(self, keys: SignInKeys) -> None:
        """The password was right: this client's failures on the account are forgiven and this attempt is
        taken back from the client's and the account's counts (which an attack keeps high)."""
        await self.throttle.clear([keys.pair])
        await self.throttle.forgive([keys.address, keys.account])

    async def login(
        self, email: str, password: str, *, totp_code: str | None, address: str | None
    ) -> TokenPair:
        email = normalise_email(email)
        keys = self._sign_in_keys(email, address)
        await self._admit(keys)
        now = self.clock.now()
        async with self.uow() as uow:  # short: no connection is held while the password is hashed
            user = await uow.users.get_by_email(email)
        if user is None or user.password_hash is None:
            await self.hasher.burn(password)
            ok = False
        else:
            ok = await self.hasher.verify(user.password_hash, password)
        # Unknown, unverified, disabled, expired or wrong: one answer for all of them.
        if not ok or user is None or not user.can_sign_in(now):
            raise Unauthenticated("invalid_credentials")
        mfa = False
        if user.totp_enabled:
            if not totp_code:
                raise Unauthenticated("mfa_required")
            step = self.totp.verify(
                self.totp.unseal(user.totp_secret or ""), totp_code, now=now, after_step=user.totp_last_step
            )
            if step is None:
                raise Unauthenticated("invalid_credentials")
            user.totp_last_step = step
            mfa = True
        async with self.uow() as uow:
            if self.hasher.needs_rehash(user.password_hash or ""):
                user.password_hash = await self.hasher.hash(password)
            await uow.users.update(user)
            pair = await self._open_session(uow, user, mfa, now)
            await uow.commit()
        await self._succeeded(keys)
        return pair

    async def _open_session(self, uow: AccountUnitOfWork, user: User, mfa: bool, now: datetime) -> TokenPair:
        client = Client.staff if user.role.is_staff else Client.web
        lifetime = self.policy.staff_session_lifetime if user.role.is_staff else self.policy.session_lifetime
        session = AuthSession(
            id=uuid.uuid4(),
            user_id=user.id,
            client=client,
            created_at=now,
            expires_at=now + lifetime,
            mfa=mfa,
        )
        await uow.sessions.add(session)
        return await self._issue(uow, user, session, parent=None, now=now)

    async def _issue(
        self,
        uow: AccountUnitOfWork,
        user: User,
        session: AuthSession,
        parent: uuid.UUID | None,
        now: datetime,
    ) -> TokenPair:
        raw = self.tokens.new_opaque()
        await uow.refresh_tokens.add(
            RefreshToken(
                id=uuid.uuid4(),
                session_id=session.id,
                digest=self.tokens.digest(raw),
                issued_at=now,
                expires_at=session.expires_at,
                parent_id=parent,
            )
        )
        actor = Actor(
            client=session.client, user_id=user.id, session_id=session.id, role=user.role, mfa=session.mfa
        )
        access, ttl = self.tokens.access_token(actor, now=now)
        return TokenPair(access_token=access, expires_in=ttl, refresh_token=raw)

    async def login_client(
        self, client_id: str, secret: str, scope: str | None, *, address: str | None
    ) -> TokenPair:
        keys = self._sign_in_keys("client:" + client_id, address)
        await self._admit(keys)
        now = self.clock.now()
        async with self.uow() as uow:
            client = await uow.service_clients.get(client_id)
        if client is None:
            await self.hasher.burn(secret)
            ok = False
        else:
            ok = await self.hasher.verify(client.secret_hash, secret)
        if not ok or client is None or not client.is_active:
            raise Unauthenticated("invalid_client")
        await self._succeeded(keys)
        requested = frozenset(scope.split()) if scope else client.scopes
        if not requested <= client.scopes:
            raise ValidationFailed("invalid_scope", field="scope")
        actor = Actor(client=client.kind, scopes=requested, service_client_id=client.client_id)
        access, ttl = self.tokens.access_token(actor, now=now)
        return TokenPair(
            access_token=access, expires_in=ttl, refresh_token=None, scope=" ".join(sorted(requested))
        )

    async def refresh(self, refresh_token: str) -> TokenPair:
        now = self.clock.now()
        async with self.uow() as uow:
            record = await uow.refresh_tokens.get_by_digest(self.tokens.digest(refresh_token))
            if record is None:
                raise Unauthenticated("invalid_grant")
            session = await uow.sessions.get(record.session_id)
            if session is None or not session.live(now):
                raise Unauthenticated("invalid_grant")
            if record.used_at is not None or not await uow.refresh_tokens.mark_used(record.id, at=now):
                # Reuse of a rotated token: we cannot tell thief from owner, so the whole family ends.
                await uow.sessions.revoke(session.id, at=now, reason="refresh_reuse")
                await uow.commit()
                raise Unauthenticated("invalid_grant")
            if record.expires_at <= now:
                raise Unauthenticated("invalid_grant")
            user = await uow.users.get(session.user_id)
            if user is None or not user.can_sign_in(now):
                raise Unauthenticated("invalid_grant")
            pair = await self._issue(uow, user, session, parent=record.id, now=now)
            await uow.commit()
            return pair

    async def logout(self, actor: Actor) -> None:
        if actor.session_id is None:
            return
        async with self.uow() as uow:
            await uow.sessions.revoke(actor.session_id, at=self.clock.now(), reason="logout")
            await uow.commit()

    # -- resolving an access token to a live actor ---------------------------------------------

    async def resolve(self, actor: Actor, issued_at: datetime) -> tuple[Actor, User | None]:
        """An access token is only as good as its server-side session (logout ends it at once). Returns the
        live actor and, for a person, the account, so a request needs this one lookup and no other."""
        if not actor.is_person:
            return actor, None
        now = self.clock.now()
        # A person's token always names its session; one that does not is refused like an ended one.
        pair = await self.sessions.live_session(actor.session_id) if actor.session_id is not None else None
        if pair is None:
            raise Unauthenticated("invalid_token")
        session, user = pair
        if (
            session.user_id != actor.user_id
            or not session.live(now)
            or not user.is_active
            or (user.expires_at is not None and user.expires_at <= now)
            or (user.tokens_valid_after is not None and issued_at < user.tokens_valid_after)
        ):
            raise Unauthenticated("invalid_token")
        if user.role is not actor.role:
            raise Unauthenticated("invalid_token")
        # The session, not the token, says whether the second factor was proven (enrolment upgrades it) and
        # when the person last proved who they are (sign-in or step-up).
        return replace(actor, mfa=session.mfa, auth_time=session.auth_time), user

    # -- the signed-in person -------------------------------------------------------------------

    async def update_me(
        self, actor: Actor, *, display_name: str | None, locale: Locale | None, fields: set[str]
    ) -> User:
        async with self.uow() as uow:
            user = await uow.users.get(actor.require_user_id())
            if user is None:
                raise Unauthenticated("invalid_token")
            if "display_name" in fields:
                user.display_name = display_name or None
            if "locale" in fields and locale is not None:
                user.locale = locale
            user.updated_at = self.clock.now()
            await uow.users.update(user)
            await uow.commit()
            return user

    def ensure_fresh(self, actor: Actor) -> None:
        """For use cases elsewhere (e.g. an export or an evidence bundle) that are sensitive account actions."""
        ensure_fresh_proof(actor, self.clock.now(), self.policy.step_up_max_age)

    async def step_up(
        self, actor: Actor, password: str, *, totp_code: str | None, address: str | None
    ) -> StepUp:
        """Re-prove identity on the caller's own session (the one its token names; no other can be named).
        Throttled exactly like sign-in, on the same counters, so it is no side door for guessing."""
        user_id = actor.require_user_id()
        if actor.session_id is None:
            raise Unauthenticated("invalid_token")
        async with self.uow() as uow:
            user = await uow.users.get(user_id)
        if user is None or user.password_hash is None:
            raise Unauthenticated("invalid_token")
        # Whether a code is needed is the account's own setting, said before anything is checked; after that,
        # a wrong password and a wrong code get the same answer, so a held session cannot test passwords alone.
        if user.totp_enabled and not totp_code:
            raise ValidationFailed("totp_code_required", field="totp_code")
        keys = self._sign_in_keys(user.email, address)
        await self._admit(keys)
        now = self.clock.now()
        password_ok = await self.hasher.verify(user.password_hash, password)
        amr: tuple[str, ...] = ("pwd",)
        step = None
        if user.totp_enabled:
            step = self.totp.verify(
                self.totp.unseal(user.totp_secret or ""),
                totp_code or "",
                now=now,
                after_step=user.totp_last_step,
            )
        if not password_ok or (user.totp_enabled and step is None):
            raise ValidationFailed("step_up_failed", field="password")
        if step is not None:
            user.totp_last_step = step  # the replay guard: one code proves once
            amr = ("pwd", "otp")
        await self._succeeded(keys)
        async with self.uow() as uow:
            if user.totp_enabled:
                await uow.users.update(user)
            await uow.sessions.mark_reauthenticated(actor.session_id, at=now)
            await uow.commit()
        return StepUp(auth_time=now, valid_until=now + self.policy.step_up_max_age, amr=amr)

    async def change_password(self, actor: Actor, current: str, new: str, *, address: str | None) -> None:
        self.ensure_fresh(actor)
        now = self.clock.now()
        user_id = actor.require_user_id()
        async with self.uow() as uow:  # short: the throttle and the hashing hold no connection of ours
            user = await uow.users.get(user_id)
        if user is None or user.password_hash is None:
            raise Unauthenticated("invalid_token")
        keys = self._sign_in_keys(user.email, address)
        await self._admit(keys)
        if not await self.hasher.verify(user.password_hash, current):
            raise ValidationFailed("current_password_wrong", field="current_password")
        await self._succeeded(keys)
        check_password(new, self.hasher, context=(user.email, user.email.split("@")[0]))
        user.password_hash = await self.hasher.hash(new)
        user.updated_at = now
        async with self.uow() as uow:
            await uow.users.update(user)
            await uow.sessions.revoke_all_for_user(
                user.id, at=now, reason="password_changed", keep=actor.session_id
            )
            await uow.commit()

    # -- changing the sign-in address ------------------------------------------------------------

    async def request_email_change(self, actor: Actor, email: str) -> None:
        """Step one of changing the sign-in address (issue 17 §3). Needs a fresh proof of identity. The
        request does the same work whatever the address (one sealed outbox row and an audit record, no
        lookup of the address), so its answer cannot tell whether another account uses it; the worker
        decides (`complete_email_change`). The address is folded only as every address is (NFKC, lower
        case: `normalise_email`), because it is the identifier sign-in and the unique constraint match."""
        self.ensure_fresh(actor)
        user_id = actor.require_user_id()
        # Capped per account, so a held session cannot use the centre to mail address after address.
        await self._limit(self.signup_throttle, [f"email-change:{user_id}"], "too_many_attempts")
        email = normalise_email(email)
        async with self.uow() as uow:
            user = await uow.users.get(user_id)
            if user is None or user.password_hash is None:
                raise Unauthenticated("invalid_token")
            if email == user.email:
                raise ValidationFailed("email_unchanged", field="email")
            request = {"user_id": str(user_id), "email": email, "session_id": str(actor.session_id or "")}
            await uow.outbox.put(EMAIL_CHANGE, {"sealed": self.tokens.seal(json.dumps(request))})
            await uow.audit.record(actor, "account.email_change_requested", "user", user_id)
            await uow.commit()

    async def complete_email_change(self, payload: Mapping[str, Any]) -> None:
        """The worker's half of `request_email_change`. A newer request replaces every pending one, whatever
        becomes of it. A free address gets the confirmation link (the address waits sealed with the token,
        never in the link); an address another account holds gets, instead, a note to that account's owner
        that someone tried to use it (the same note registration sends: the owner learns of the attempt, the
        requester learns nothing, and the mail names no one)."""
        request = json.loads(self.tokens.unseal(str(payload["sealed"])))
        email = str(request["email"])
        may_mail = await self._may_mail(email)  # counted outside the unit of work, as elsewhere
        now = self.clock.now()
        async with self.uow() as uow:
            user = await uow.users.get(uuid.UUID(str(request["user_id"])))
            if user is None or not user.is_active:
                return
            await uow.email_tokens.consume_all(user.id, EmailTokenPurpose.change_email, at=now)
            existing = await uow.users.get_by_email(email)
            if may_mail and existing is None:
                sealed = self.tokens.seal(json.dumps({"email": email, "session_id": request["session_id"]}))
                await self._mail_token(
                    uow,
                    user,
                    EmailTokenPurpose.change_email,
                    now,
                    sealed_request=sealed,
                    to=self.tokens.seal(email),
                )
            elif may_mail and existing is not None and existing.id != user.id:
                await uow.outbox.put(
                    "mail.email_change_taken", {"user_id": str(existing.id)}, dedupe_key=None
                )
            await uow.commit()

    async def confirm_email_change(self, token: str) -> None:
        """Step two: the link mailed to the new address. The address changes if it is still free now (the
        unique constraint decides a race; if it is taken, nothing changes and the token stays as it was),
        every other session of the account ends, every link still pending for the account stops working
        (a reset link in the old mailbox must not outlive the address), and the old address is told,
        without the new one."""
        now = self.clock.now()
        async with self.uow() as uow:
            record, user = await self._use_token(uow, token, {EmailTokenPurpose.change_email}, now)
            if record.sealed_request is None:
                raise ValidationFailed("invalid_or_expired_token", field="token")
            request = json.loads(self.tokens.unseal(record.sealed_request))
            old_email = user.email
            user.email = str(request["email"])
            user.email_verified_at = now  # the link proves the new mailbox is theirs
            user.updated_at = now
            user.version += 1
            if not await uow.users.change_email(user):
                raise Conflict("email_in_use")
            for purpose in EmailTokenPurpose:
                await uow.email_tokens.consume_all(user.id, purpose, at=now)
            session_id = str(request.get("session_id") or "")
            keep = uuid.UUID(session_id) if session_id else None
            await uow.sessions.revoke_all_for_user(user.id, at=now, reason="email_changed", keep=keep)
            await uow.outbox.put(
                "mail.email_changed",
                {"user_id": str(user.id), "to": self.tokens.seal(old_email)},
                dedupe_key=None,
            )
            actor = Actor(
                client=Client.staff if user.role.is_staff else Client.web,
                user_id=user.id,
                session_id=keep,
                role=user.role,
            )
            await uow.audit.record(actor, "account.email_changed", "user", user.id)
            await uow.commit()

    async def begin_totp(self, actor: Actor) -> TotpEnrolment:
        ensure_staff(actor)
        self.ensure_fresh(actor)  # the secret is shown once: only to whoever just proved who they are
        async with self.uow() as uow:
            user = await uow.users.get(actor.require_user_id())
            if user is None:
                raise Unauthenticated("invalid_token")
            if user.totp_enabled:
                raise Conflict("totp_already_enabled")
            secret = self.totp.new_secret()
            user.totp_secret = self.totp.seal(secret)
            user.updated_at = self.clock.now()
            await uow.users.update(user)
            await uow.commit()
        return TotpEnrolment(secret=secret, provisioning_uri=self.totp.provisioning_uri(secret, user.email))

    async def confirm_totp(self, actor: Actor, code: str) -> None:
        ensure_staff(actor)
        now = self.clock.now()
        async with self.uow() as uow:
            user = await uow.users.get(actor.require_user_id())
            if user is None:
                raise Unauthenticated("invalid_token")
            if user.totp_enabled:
                raise Conflict("totp_already_enabled")
            if user.totp_secret is None:
                raise Conflict("totp_not_started")
            step = self.totp.verify(self.totp.unseal(user.totp_secret), code, now=now, after_step=None)
            if step is None:
                raise ValidationFailed("invalid_totp_code", field="code")
            user.totp_last_step = step
            user.totp_enabled_at = now
            user.updated_at = now
            await uow.users.update(user)
            # Other sessions were opened without the second factor: end them.
            await uow.sessions.revoke_all_for_user(
                user.id, at=now, reason="mfa_enabled", keep=actor.session_id
            )
            if actor.session_id is not None:
                await uow.sessions.mark_mfa(actor.session_id)
            await uow.commit()

    # -- administration ------------------------------------------------------------------------

    async def create_staff(
        self, actor: Actor, *, email: str, role: Role, display_name: str | None, expires_at: datetime | None
    ) -> User:
        """Admins invite staff; the invitee sets a password through the mailed single-use link."""
        ensure_admin(actor)
        if role not in STAFF:
            raise ValidationFailed("role_not_staff", field="role")
        if role is Role.council and expires_at is None:
            raise ValidationFailed("council_requires_expiry", field="expires_at")
        now = self.clock.now()
        email = normalise_email(email)
        may_mail = await self._may_mail(email)  # counted before the unit of work takes its connection
        async with self.uow() as uow:
            if await uow.users.get_by_email(email) is not None:
                raise Conflict("email_taken")
            user = User(
                id=uuid.uuid4(),
                email=email,
                role=role,
                password_hash=None,
                display_name=display_name or None,
                expires_at=expires_at,
                created_at=now,
                updated_at=now,
            )
            await uow.users.add(user)
            if may_mail:
                await self._mail_token(uow, user, EmailTokenPurpose.invite, now)
            await uow.commit()
            return user

    async def create_user_directly(
        self,
        *,
        email: str,
        role: Role,
        password: str,
        display_name: str | None = None,
        expires_at: datetime | None = None,
    ) -> User:
        """Operator path (CLI): a verified account with a password, e.g. the first admin."""
        if role is Role.council and expires_at is None:
            raise ValidationFailed("council_requires_expiry", field="expires_at")
        email = normalise_email(email)
        check_password(password, self.hasher, context=(email, email.split("@")[0]))
        now = self.clock.now()
        async with self.uow() as uow:
            if await uow.users.get_by_email(email) is not None:
                raise Conflict("email_taken")
            user = User(
                id=uuid.uuid4(),
                email=email,
                role=role,
                password_hash=await self.hasher.hash(password),
                display_name=display_name,
                email_verified_at=now,
                expires_at=expires_at,
                created_at=now,
                updated_at=now,
            )
            await uow.users.add(user)
            await uow.commit()
            return user

    async def list_users(
        self, actor: Actor, *, role: Role | None, after: Cursor | None, limit: int
    ) -> Sequence[User]:
        """Newest first, by (created_at, id)."""
        ensure_admin(actor)
        async with self.uow() as uow:
            return await uow.users.page(role=role, after=after, limit=limit)

    async def get_user(self, actor: Actor, user_id: uuid.UUID) -> User:
        ensure_admin(actor)
        async with self.uow() as uow:
            user = await uow.users.get(user_id)
        if user is None:
            raise NotFound("user_not_found")
        return user

    async def update_user(
        self,
        actor: Actor,
        user_id: uuid.UUID,
        *,
        changes: dict[str, object],
        expected_version: int | None,
    ) -> User:
        ensure_admin(actor)
        now = self.clock.now()
        async with self.uow() as uow:
            user = await uow.users.get(user_id)
            if user is None:
                raise NotFound("user_not_found")
            if expected_version is not None and expected_version != user.version:
                raise PreconditionFailed("stale_version")
            end_sessions = False
            if "role" in changes and changes["role"] != user.role:
                if user.id == actor.user_id:
                    raise Conflict("cannot_change_own_role")
                user.role = Role(str(changes["role"]))
                end_sessions = True
            if "is_active" in changes and changes["is_active"] != user.is_active:
                if user.id == actor.user_id:
                    raise Conflict("cannot_deactivate_self")
                user.is_active = bool(changes["is_active"])
                end_sessions = end_sessions or not user.is_active
            if "display_name" in changes:
                name = changes["display_name"]
                user.display_name = str(name) if name else None
            if "expires_at" in changes:
                user.expires_at = cast(datetime | None, changes["expires_at"])  # the route parsed it
            if user.role is Role.council and user.expires_at is None:
                raise ValidationFailed("council_requires_expiry", field="expires_at")
            user.updated_at = now
            user.version += 1
            await uow.users.update(user)
            if end_sessions:
                await uow.sessions.revoke_all_for_user(user.id, at=now, reason="account_changed")
            await uow.commit()
            return user

    async def revoke_user_sessions(self, actor: Actor, user_id: uuid.UUID) -> None:
        ensure_admin(actor)
        async with self.uow() as uow:
            if await uow.users.get(user_id) is None:
                raise NotFound("user_not_found")
            await uow.sessions.revoke_all_for_user(user_id, at=self.clock.now(), reason="admin")
            await uow.commit()

    async def add_service_client(
        self, *, client_id: str, name: str, kind: Client, scopes: frozenset[str]
    ) -> tuple[ServiceClient, str]:
        secret = self.tokens.new_opaque()
        client = ServiceClient(
            client_id=client_id,
            secret_hash=await self.hasher.hash(secret),
            name=name,
            kind=kind,
            scopes=scopes,
        )
        async with self.uow() as uow:
            if await uow.service_clients.get(client_id) is not None:
                raise Conflict("client_id_taken")
            await uow.service_clients.add(client)
            await uow.commit()
        return client, secret


@dataclass(frozen=True, slots=True)
class SignInKeys:
    pair: str  # this account from this client
    address: str  # this client, every account
    account: str  # this account, every client


def client_group(address: str | None) -> str:
    """What throttles count as one client: an IPv4 address or an IPv6 /64. One host usually holds a whole
    /64, so counting single IPv6 addresses would let one attacker rotate addresses without end."""
    if not address:
        return "-"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
