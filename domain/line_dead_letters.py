"""LINE deliveries that failed on every try (dead letters), for admins: list them, send one again."""

from __future__ import annotations

import logging
import uuid

from domain import policy
from domain.actors import Actor
from domain.errors import InvalidState, NotFound
from domain.line_ports import DeadLetter, LineUnitOfWorkFactory
from domain.ports import Clock

log = logging.getLogger("madoguchi.line")

DEAD = "dead"
LIST_LIMIT = 100


class LineDeadLetters:
    def __init__(self, uow: LineUnitOfWorkFactory, clock: Clock) -> None:
        self.uow = uow
        self.clock = clock

    async def newest(self, actor: Actor, limit: int = LIST_LIMIT) -> list[DeadLetter]:
        """Newest failure first."""
        policy.ensure_may_handle_line_dead_letters(actor)
        async with self.uow() as uow:
            return await uow.line_deliveries.dead(min(limit, LIST_LIMIT))

    async def replay(self, actor: Actor, delivery_id: uuid.UUID) -> DeadLetter:
        """Due again now, as a push with its original retry key (LINE drops a second copy of a push it took)."""
        policy.ensure_may_handle_line_dead_letters(actor)
        async with self.uow() as uow:
            found = await uow.line_deliveries.find(delivery_id)
            if found is None:
                raise NotFound("dead_letter_not_found")
            if found.status != DEAD:
                raise InvalidState("not_a_dead_letter")
            replayed = await uow.line_deliveries.requeue(delivery_id, self.clock.now())
            await uow.commit()
        log.info("line dead letter replayed", extra={"delivery_id": str(delivery_id)})
        return replayed
