"""The contact-desk directory: reference data that supervisors and admins keep current, every change a new
version (who, when, why), so an answer can always be traced to the desk details it showed."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Protocol

from domain.actors import Actor
from domain.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from domain.knowledge_model import (
    DESK_KINDS,
    Desk,
    Knowledge,
    is_https_url,
)
from domain.policy import ensure_editor
from domain.ports import Clock, DeskUnitOfWork, UnitOfWorkFactory
from domain.text import nfkc


@dataclass(frozen=True, slots=True)
class DeskVersion:
    desk: Desk
    version: int
    changed_at: datetime
    changed_by: uuid.UUID | None  # None: loaded from the reference file
    note: str | None = None


@dataclass(frozen=True, slots=True)
class DeskFilter:
    kind: str | None = None
    category: str | None = None
    emergency: bool | None = None
    text: str | None = None


class DeskRepository(Protocol):
    async def current(self) -> list[DeskVersion]: ...

    async def stamp(self) -> frozenset[uuid.UUID]:
        """Changes whenever the current version of any desk changes (the ids of the current versions)."""

    async def get(self, code: str) -> DeskVersion | None: ...

    async def versions(self, code: str) -> list[DeskVersion]: ...

    async def add_version(self, version: DeskVersion) -> bool:
        """Store a new current version; False if that version number exists (a concurrent edit)."""


REQUIRED_FIELDS = frozenset({"code", "name_ja", "name_en", "handles_ja", "handles_en", "kind", "categories"})
# What an editor may change; the code names the desk, sources and languages come from the reference file.
EDITABLE_FIELDS = frozenset(f.name for f in fields(Desk)) - {"code", "sources", "languages"}


class DeskDirectory:
    def __init__(self, uow: UnitOfWorkFactory[DeskUnitOfWork], clock: Clock, knowledge: Knowledge) -> None:
        self.uow = uow
        self.clock = clock
        self.knowledge = knowledge
        # The current directory, kept per directory stamp: public reference data, the same for everyone, so
        # every process may share it; an edit anywhere changes the stamp (the ids of the current versions) and
        # the next read reloads.
        self._cache: tuple[frozenset[uuid.UUID], list[DeskVersion]] | None = None

    async def current(self, uow: DeskUnitOfWork | None = None) -> list[DeskVersion]:
        """`uow`: a caller's open unit of work (its connection); else a short one of our own."""
        if uow is None:
            async with self.uow() as own:
                return await self.current(own)
        stamp = await uow.desks.stamp()
        cached = self._cache
        if cached is not None and cached[0] == stamp:
            return cached[1]
        found: list[DeskVersion] = await uow.desks.current()
        self._cache = (stamp, found)
        return found

    def _validated(self, desk: Desk) -> Desk:
        # The reference file's rules: required fields present, no text that is only blanks.
        values = [getattr(desk, f.name) for f in fields(Desk)]
        if any(getattr(desk, name) is None for name in REQUIRED_FIELDS) or any(
            isinstance(v, str) and not v.strip() for v in values
        ):
            raise ValidationFailed("invalid_desk")
        # Names and descriptions as the editor wrote them; codes, phone numbers and URLs are identifiers
        # (a tel: link needs ASCII digits), so full-width input is folded.
        desk = replace(
            desk,
            categories=tuple(desk.categories),
            emergency=bool(desk.emergency),  # a PATCH may send null: not an emergency desk
            uncertain=bool(desk.uncertain),
            code=nfkc(desk.code),
            kind=nfkc(desk.kind),
            phone=None if desk.phone is None else nfkc(desk.phone),
            url=None if desk.url is None else nfkc(desk.url),
        )
        if desk.kind not in DESK_KINDS:
            raise ValidationFailed("unknown_code", field="kind")
        known = {c.code for c in self.knowledge.categories}
        if not set(desk.categories) <= known:
            raise ValidationFailed("unknown_code", field="categories")
        if desk.url is not None and not is_https_url(desk.url):
            raise ValidationFailed(
                "invalid_url", field="url", detail="https:// で始まるURLを入力してください"
            )
        if not (desk.phone or desk.url) and desk.kind != "platform":
            raise ValidationFailed("desk_needs_contact", field="phone")
        return desk

    async def search(
        self, desk_filter: DeskFilter, *, uow: DeskUnitOfWork | None = None
    ) -> list[DeskVersion]:
        found = await self.current(uow)
        wanted = None
        if desk_filter.category is not None:
            wanted = {desk_filter.category} | {
                c.code for c in self.knowledge.categories if c.parent == desk_filter.category
            }
        needle = nfkc(desk_filter.text).lower() if desk_filter.text else None

        def keep(d: Desk) -> bool:
            if desk_filter.kind is not None and d.kind != desk_filter.kind:
                return False
            if desk_filter.emergency is not None and d.emergency != desk_filter.emergency:
                return False
            if wanted is not None and not (wanted.intersection(d.categories) or d.is_general):
                return False
            texts = (d.name_ja, d.name_en, d.handles_ja, d.handles_en)
            return needle is None or any(needle in nfkc(x or "").lower() for x in texts)

        return [v for v in found if keep(v.desk)]

    async def get(self, code: str) -> DeskVersion:
        async with self.uow() as uow:
            found = await uow.desks.get(code)
        if found is None:
            raise NotFound("desk_not_found")
        return found

    async def resolve(self, codes: Sequence[str], *, uow: DeskUnitOfWork | None = None) -> list[Desk]:
        """Current details of these desks, in the order given, unknown codes skipped."""
        if not codes:
            return []
        return self.pick(await self.current(uow), codes)

    @staticmethod
    def pick(current: Sequence[DeskVersion], codes: Sequence[str]) -> list[Desk]:
        by_code = {v.desk.code: v.desk for v in current}
        seen: list[Desk] = []
        for code in codes:
            desk = by_code.get(code)
            if desk is not None and desk not in seen:
                seen.append(desk)
        return seen

    async def emergency(self, *, uow: DeskUnitOfWork | None = None) -> list[Desk]:
        return [v.desk for v in await self.search(DeskFilter(emergency=True), uow=uow)]

    async def create(self, actor: Actor, desk: Desk, note: str | None) -> DeskVersion:
        ensure_editor(actor)
        desk = self._validated(desk)
        async with self.uow() as uow:
            if await uow.desks.get(desk.code) is not None:
                raise Conflict("desk_exists")
            version = DeskVersion(desk, 1, self.clock.now(), actor.user_id, note)
            if not await uow.desks.add_version(version):
                raise Conflict("desk_exists")
            await uow.commit()
        return version

    async def update(
        self,
        actor: Actor,
        code: str,
        changes: Mapping[str, object],
        *,
        expected_version: int | None,
        note: str | None,
    ) -> DeskVersion:
        ensure_editor(actor)
        if refused := sorted(set(changes) - EDITABLE_FIELDS):
            raise ValidationFailed("field_not_allowed", fields=refused)
        async with self.uow() as uow:
            current = await uow.desks.get(code)
            if current is None:
                raise NotFound("desk_not_found")
            if expected_version is not None and current.version != expected_version:
                raise PreconditionFailed("stale_version")  # None: If-Match * (any current version)
            desk = self._validated(replace(current.desk, **changes))  # type: ignore[arg-type]
            version = DeskVersion(desk, current.version + 1, self.clock.now(), actor.user_id, note)
            if not await uow.desks.add_version(version):
                raise PreconditionFailed("stale_version")
            await uow.commit()
        return version

    async def versions(self, actor: Actor, code: str) -> list[DeskVersion]:
        ensure_editor(actor)
        async with self.uow() as uow:
            found = await uow.desks.versions(code)
        if not found:
            raise NotFound("desk_not_found")
        return found

    async def sync_reference(self) -> int:
        """Load the reference file: a desk that is new, or whose file entry changed since the last load,
        gets a new version. Staff edits made through the API are newer and are not overwritten unless the
        file itself changes for that desk. Returns how many versions were written."""
        written = 0
        async with self.uow() as uow:
            for desk in self.knowledge.desks:
                history = await uow.desks.versions(desk.code)
                from_file = [v for v in history if v.changed_by is None]
                if from_file and from_file[-1].desk == desk:
                    continue
                number = (history[-1].version + 1) if history else 1
                await uow.desks.add_version(
                    DeskVersion(desk, number, self.clock.now(), None, "reference data")
                )
                written += 1
            await uow.commit()
        return written
