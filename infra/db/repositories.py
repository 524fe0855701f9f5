"""Repositories: the only place that turns table rows into domain records and back."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from domain.actors import Client, Role
from domain.consultations import Cursor
from domain.models import (
    AuthSession,
    EmailToken,
    EmailTokenPurpose,
    Locale,
    RefreshToken,
    ServiceClient,
    User,
)
from domain.ports import Clock
from infra.db.engine import affected
from infra.db.paging import keyset
from infra.db.tables import (
    AuthSessionRow,
    EmailTokenRow,
    OutboxRow,
    RefreshTokenRow,
    ServiceClientRow,
    UserRow,
)
from infra.db.types import table_of


def _user(row: UserRow) -> User:
    return User(
        id=row.id,
        email=row.email,
        role=Role(row.role),
        password_hash=row.password_hash,
        display_name=row.display_name,
        locale=Locale(row.locale),
        email_verified_at=row.email_verified_at,
        is_active=row.is_active,
        totp_secret=row.totp_secret,
        totp_enabled_at=row.totp_enabled_at,
        totp_last_step=row.totp_last_step,
        expires_at=row.expires_at,
        tokens_valid_after=row.tokens_valid_after,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )


def _user_values(user: User) -> dict[str, Any]:
    return {
        "email": user.email,
        "role": user.role.value,
        "password_hash": user.password_hash,
        "display_name": user.display_name,
        "locale": user.locale.value,
        "email_verified_at": user.email_verified_at,
        "is_active": user.is_active,
        "totp_secret": user.totp_secret,
        "totp_enabled_at": user.totp_enabled_at,
        "totp_last_step": user.totp_last_step,
        "expires_at": user.expires_at,
        "tokens_valid_after": user.tokens_valid_after,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
        "version": user.version,
    }


def _session(row: AuthSessionRow) -> AuthSession:
    return AuthSession(
        id=row.id,
        user_id=row.user_id,
        client=Client(row.client),
        created_at=row.created_at,
        expires_at=row.expires_at,
        mfa=row.mfa,
        revoked_at=row.revoked_at,
        revoked_reason=row.revoked_reason,
        reauthenticated_at=row.reauthenticated_at,
    )


class SqlUsers:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, user: User) -> None:
        self.db.add(UserRow(id=user.id, **_user_values(user)))
        await self.db.flush()

    async def get(self, user_id: uuid.UUID) -> User | None:
        row = await self.db.get(UserRow, user_id, populate_existing=True)
        return _user(row) if row else None

    async def get_by_email(self, email: str) -> User | None:
        row = (await self.db.execute(select(UserRow).where(col(UserRow.email) == email))).scalar_one_or_none()
        return _user(row) if row else None

    async def update(self, user: User) -> None:
        await self.db.execute(update(UserRow).where(col(UserRow.id) == user.id).values(**_user_values(user)))

    async def change_email(self, user: User) -> bool:
        # A savepoint: the unique constraint decides a race, and the transaction stays usable after a refusal.
        try:
            async with self.db.begin_nested():
                await self.update(user)
        except IntegrityError:
            return False
        return True

    async def page(self, *, role: Role | None, after: Cursor | None, limit: int) -> Sequence[User]:
        query = select(UserRow)
        if role is not None:
            query = query.where(col(UserRow.role) == role.value)
        query = keyset(query, col(UserRow.created_at), col(UserRow.id), after, limit, newest_first=True)
        return [_user(r) for r in (await self.db.execute(query)).scalars()]


class SqlSessions:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, session: AuthSession) -> None:
        self.db.add(
            AuthSessionRow(
                id=session.id,
                user_id=session.user_id,
                client=session.client.value,
                mfa=session.mfa,
                created_at=session.created_at,
                expires_at=session.expires_at,
            )
        )
        await self.db.flush()

    async def get(self, session_id: uuid.UUID) -> AuthSession | None:
        row = await self.db.get(AuthSessionRow, session_id)
        return _session(row) if row else None

    async def revoke(self, session_id: uuid.UUID, *, at: datetime, reason: str) -> None:
        await self.db.execute(
            update(AuthSessionRow)
            .where(col(AuthSessionRow.id) == session_id, col(AuthSessionRow.revoked_at).is_(None))
            .values(revoked_at=at, revoked_reason=reason)
        )

    async def revoke_all_for_user(
        self, user_id: uuid.UUID, *, at: datetime, reason: str, keep: uuid.UUID | None = None
    ) -> None:
        query = update(AuthSessionRow).where(
            col(AuthSessionRow.user_id) == user_id,
            col(AuthSessionRow.revoked_at).is_(None),
        )
        if keep is not None:
            query = query.where(col(AuthSessionRow.id) != keep)
        await self.db.execute(query.values(revoked_at=at, revoked_reason=reason))

    async def mark_mfa(self, session_id: uuid.UUID) -> None:
        await self.db.execute(
            update(AuthSessionRow).where(col(AuthSessionRow.id) == session_id).values(mfa=True)
        )

    async def mark_reauthenticated(self, session_id: uuid.UUID, *, at: datetime) -> None:
        await self.db.execute(
            update(AuthSessionRow).where(col(AuthSessionRow.id) == session_id).values(reauthenticated_at=at)
        )


class SqlSessionLookup:
    """The per-request session check. It runs on every authenticated request, so on PostgreSQL it skips
    SQLAlchemy's statement layer (about 0.4 ms of CPU a call) and asks the driver directly, outside any
    transaction; elsewhere it is one Core SELECT. Both return the same records."""

    PG_QUERY = (
        "SELECT s.id AS s_id, s.user_id AS s_user_id, s.client AS s_client, s.created_at AS s_created_at, "
        "s.expires_at AS s_expires_at, s.mfa AS s_mfa, s.revoked_at AS s_revoked_at, "
        "s.reauthenticated_at AS s_reauthenticated_at, u.* "
        "FROM auth_session s JOIN app_user u ON u.id = s.user_id WHERE s.id = $1"
    )

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.native = engine.dialect.name == "postgresql" and engine.dialect.driver == "asyncpg"
        sessions, users = table_of(AuthSessionRow), table_of(UserRow)
        s = sessions.c
        self.query = (
            select(
                s.id.label("s_id"),
                s.user_id.label("s_user_id"),
                s.client.label("s_client"),
                s.created_at.label("s_created_at"),
                s.expires_at.label("s_expires_at"),
                s.mfa.label("s_mfa"),
                s.revoked_at.label("s_revoked_at"),
                s.reauthenticated_at.label("s_reauthenticated_at"),
                users,
            )
            .join_from(sessions, users, s.user_id == users.c.id)
            .where(s.id == bindparam("sid"))
        )

    async def live_session(self, session_id: uuid.UUID) -> tuple[AuthSession, User] | None:
        async with self.engine.connect() as conn:
            if self.native:
                raw = await conn.get_raw_connection()
                assert raw.driver_connection is not None  # asyncpg's connection, open while `conn` is
                found = await raw.driver_connection.fetchrow(self.PG_QUERY, session_id)
                row = dict(found) if found is not None else None
            else:
                result = (await conn.execute(self.query, {"sid": session_id})).first()
                row = dict(result._mapping) if result is not None else None
        if row is None:
            return None
        session = AuthSession(
            id=row["s_id"],
            user_id=row["s_user_id"],
            client=Client(row["s_client"]),
            created_at=row["s_created_at"],
            expires_at=row["s_expires_at"],
            mfa=row["s_mfa"],
            revoked_at=row["s_revoked_at"],
            reauthenticated_at=row["s_reauthenticated_at"],
        )
        return session, _user(cast(UserRow, SimpleNamespace(**row)))  # the row has UserRow's columns


class SqlRefreshTokens:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, token: RefreshToken) -> None:
        self.db.add(
            RefreshTokenRow(
                id=token.id,
                session_id=token.session_id,
                digest=token.digest,
                parent_id=token.parent_id,
                issued_at=token.issued_at,
                expires_at=token.expires_at,
            )
        )
        await self.db.flush()

    async def get_by_digest(self, digest: str) -> RefreshToken | None:
        row = (
            await self.db.execute(select(RefreshTokenRow).where(col(RefreshTokenRow.digest) == digest))
        ).scalar_one_or_none()
        if row is None:
            return None
        return RefreshToken(
            id=row.id,
            session_id=row.session_id,
            digest=row.digest,
            issued_at=row.issued_at,
            expires_at=row.expires_at,
            parent_id=row.parent_id,
            used_at=row.used_at,
        )

    async def mark_used(self, token_id: uuid.UUID, *, at: datetime) -> bool:
        # A conditional UPDATE is the race guard: of two concurrent refreshes only one sees rowcount 1.
        result = await self.db.execute(
            update(RefreshTokenRow)
            .where(col(RefreshTokenRow.id) == token_id, col(RefreshTokenRow.used_at).is_(None))
            .values(used_at=at)
        )
        return affected(result) == 1


class SqlEmailTokens:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, token: EmailToken) -> None:
        self.db.add(
            EmailTokenRow(
                id=token.id,
                user_id=token.user_id,
                purpose=token.purpose.value,
                digest=token.digest,
                expires_at=token.expires_at,
                password_hash=token.password_hash,
                sealed_request=token.sealed_request,
            )
        )
        await self.db.flush()

    async def consume_all(self, user_id: uuid.UUID, purpose: EmailTokenPurpose, *, at: datetime) -> None:
        await self.db.execute(
            update(EmailTokenRow)
            .where(
                col(EmailTokenRow.user_id) == user_id,
                col(EmailTokenRow.purpose) == purpose.value,
                col(EmailTokenRow.used_at).is_(None),
            )
            .values(used_at=at)
        )

    async def get_by_digest(self, digest: str) -> EmailToken | None:
        row = (
            await self.db.execute(select(EmailTokenRow).where(col(EmailTokenRow.digest) == digest))
        ).scalar_one_or_none()
        if row is None:
            return None
        return EmailToken(
            id=row.id,
            user_id=row.user_id,
            purpose=EmailTokenPurpose(row.purpose),
            digest=row.digest,
            expires_at=row.expires_at,
            used_at=row.used_at,
            password_hash=row.password_hash,
            sealed_request=row.sealed_request,
        )

    async def consume(self, token_id: uuid.UUID, *, at: datetime) -> bool:
        result = await self.db.execute(
            update(EmailTokenRow)
            .where(col(EmailTokenRow.id) == token_id, col(EmailTokenRow.used_at).is_(None))
            .values(used_at=at)
        )
        return affected(result) == 1


class SqlServiceClients:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def get(self, client_id: str) -> ServiceClient | None:
        row = await self.db.get(ServiceClientRow, client_id)
        if row is None:
            return None
        return ServiceClient(
            client_id=row.client_id,
            secret_hash=row.secret_hash,
            name=row.name,
            kind=Client(row.kind),
            scopes=frozenset(row.scopes),
            is_active=row.is_active,
        )

    async def add(self, client: ServiceClient) -> None:
        self.db.add(
            ServiceClientRow(
                client_id=client.client_id,
                secret_hash=client.secret_hash,
                name=client.name,
                kind=client.kind.value,
                scopes=sorted(client.scopes),
                is_active=client.is_active,
            )
        )
        await self.db.flush()


class SqlOutbox:
    def __init__(self, db: AsyncSession, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def put(self, kind: str, payload: dict[str, Any], *, dedupe_key: str | None = None) -> None:
        now = self.clock.now()
        self.db.add(
            OutboxRow(
                id=uuid.uuid4(),
                kind=kind,
                payload=payload,
                dedupe_key=dedupe_key,
                created_at=now,
                next_attempt_at=now - timedelta(seconds=1),
            )
        )
        await self.db.flush()
