"""Linking a consulter's account to their LINE user (LINE's account-link flow), as use cases.

1. On the LINE side the person asks to link; the bot sends a button to the my-page with a link token
   (domain/line_conversation.py). 2. Signed in on the my-page, the consulter asks for a nonce (`create_nonce`)
   and the browser goes to LINE's accountLink URL with it. 3. LINE sends an `accountLink` event carrying the
   nonce back (`complete`): the nonce is consumed once and the LINE user is bound to the account.
Only the nonce's SHA-256 digest is stored; it is unpredictable and unrelated to the account id (LINE's rule).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from domain import policy
from domain.actors import Actor
from domain.errors import ValidationFailed
from domain.line_ports import LinePerson, LineRepositories, LineUnitOfWorkFactory
from domain.ports import Clock

log = logging.getLogger("madoguchi.line")

ACCOUNT_LINK_URL = "https://access.line.me/dialog/bot/accountLink"
# A link token as LINE issues it (URL-safe characters; LINE does not document a length, so a generous range).
# Checked here, where the redirect URL is built, whoever the caller is.
LINK_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,128}")


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class LinkNonce:
    nonce: str
    redirect_url: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LinkStatus:
    linked: bool
    linked_at: datetime | None
    following: bool


class LineLinking:
    def __init__(self, uow: LineUnitOfWorkFactory, clock: Clock, *, nonce_minutes: int) -> None:
        self.uow = uow
        self.clock = clock
        self.nonce_lifetime = timedelta(minutes=nonce_minutes)

    async def create_nonce(self, actor: Actor, link_token: str) -> LinkNonce:
        """The nonce that binds the LINE user of `link_token` to the caller's account (single use)."""
        policy.ensure_may_link_line(actor)
        user_id = actor.require_user_id()
        if not LINK_TOKEN.fullmatch(link_token):
            raise ValidationFailed("invalid_link_token", field="link_token")
        nonce = secrets.token_urlsafe(32)
        now = self.clock.now()
        expires_at = now + self.nonce_lifetime
        async with self.uow() as uow:
            await uow.line_nonces.add(digest(nonce), user_id, now, expires_at)
            await uow.commit()
        query = urlencode({"linkToken": link_token, "nonce": nonce})
        return LinkNonce(nonce=nonce, redirect_url=f"{ACCOUNT_LINK_URL}?{query}", expires_at=expires_at)

    async def status(self, actor: Actor) -> LinkStatus:
        policy.ensure_may_link_line(actor)
        async with self.uow() as uow:
            person = await uow.line_users.by_user(actor.require_user_id())
        if person is None:
            return LinkStatus(linked=False, linked_at=None, following=False)
        return LinkStatus(linked=True, linked_at=person.linked_at, following=person.following)

    async def unlink(self, actor: Actor) -> None:
        """No more notices on LINE; idempotent."""
        policy.ensure_may_link_line(actor)
        user_id = actor.require_user_id()
        async with self.uow() as uow:
            if await uow.line_users.unlink_user(user_id, self.clock.now()):
                log.info("line account unlinked", extra={"user_id": str(user_id)})
            await uow.commit()

    @staticmethod
    async def complete(
        repos: LineRepositories, person: LinePerson, payload: Mapping[str, Any], now: datetime
    ) -> uuid.UUID | None:
        """The `accountLink` event, inside the conversation's unit of work: the account now linked, or None
        when LINE reported a failure, the nonce is unknown, used or expired, or the account may not be linked
        (closed, or no longer a consulter)."""
        nonce_digest = payload.get("nonce_digest")
        if not payload.get("ok") or not isinstance(nonce_digest, str):
            return None
        user_id = await repos.line_nonces.consume(nonce_digest, now)
        account = await repos.users.get(user_id) if user_id else None
        if account is None or not policy.may_be_linked_to_line(account):
            return None
        await repos.line_users.bind(person.line_user_id, account.id, now)
        log.info("line account linked", extra={"user_id": str(account.id)})
        return account.id
