"""infra/db/visibility.py on the real database: each visibility of domain/policy.py selects exactly the rows it
names, for consultations and for what hangs off them (answer drafts, letters, the audit trail)."""

from __future__ import annotations

import uuid

from domain.actors import Role
from domain.policy import All, AssignedTo, AssignedToOrUnassigned, InReview, Nothing, OwnedBy
from tests.api.consultation_helpers import open_consultation, take


async def test_each_visibility_selects_its_rows(client, people, container) -> None:  # type: ignore[no-untyped-def]
    owner, other = await people.create(), await people.create()
    supervisor, consultant = await people.create(Role.supervisor), await people.create(Role.consultant)
    reviewed = (await open_consultation(client, owner))["id"]  # the example intake needs the legal advisor
    waiting = (await open_consultation(client, owner))["id"]  # unassigned
    theirs = (await open_consultation(client, other))["id"]
    await take(client, supervisor, reviewed)
    draft = await client.post(
        f"/v1/consultations/{reviewed}/answers", headers=supervisor.headers, json={"body": "回答案です"}
    )
    assert draft.status_code == 201, draft.text
    draft_id = uuid.UUID(draft.json()["id"])
    submitted = await client.post(
        f"/v1/consultations/{reviewed}/answers/{draft_id}/submit", headers=supervisor.headers
    )
    assert submitted.status_code == 200, submitted.text
    ids = [uuid.UUID(x) for x in (reviewed, waiting, theirs)]
    r, w, t = ids

    async with container.consultations.uow() as uow:

        async def seen(visibility) -> set[uuid.UUID]:  # type: ignore[no-untyped-def]
            return set(await uow.consultations.many(ids, visibility))

        assert await seen(All()) == {r, w, t}
        assert await seen(OwnedBy(owner.id)) == {r, w}
        assert await seen(AssignedTo(supervisor.id)) == {r}
        assert await seen(AssignedToOrUnassigned(consultant.id)) == {w, t}
        assert await seen(AssignedToOrUnassigned(supervisor.id)) == {r, w, t}
        assert await seen(InReview()) == {r}  # only the case with a draft waiting for review
        assert await seen(Nothing()) == set()

        # Answer drafts: with their consultation, or by the review state for the legal advisor.
        assert await uow.answers.get(draft_id, OwnedBy(owner.id)) is not None
        assert await uow.answers.get(draft_id, OwnedBy(other.id)) is None
        assert await uow.answers.get(draft_id, AssignedTo(supervisor.id)) is not None
        assert await uow.answers.get(draft_id, AssignedToOrUnassigned(consultant.id)) is None
        assert await uow.answers.get(draft_id, InReview()) is not None
        assert await uow.answers.get(draft_id, Nothing()) is None
        assert [d.id for d in await uow.answers.awaiting_review(InReview())] == [draft_id]
        assert await uow.answers.awaiting_review(Nothing()) == []
        assert await uow.letters.awaiting_review(InReview()) == []

        # The audit trail: all of it or none of it.
        assert await uow.quality.trail(All(), None, None, limit=50)
        assert await uow.quality.trail(Nothing(), None, None, limit=50) == []

    # Once the advisor has decided, the case leaves the advisor's sight.
    advisor = await people.create(Role.legal_advisor)
    approved = await client.post(f"/v1/reviews/{draft_id}/approve", headers=advisor.headers, json={})
    assert approved.status_code == 200, approved.text
    async with container.consultations.uow() as uow:
        assert set(await uow.consultations.many(ids, InReview())) == set()
        assert await uow.answers.get(draft_id, InReview()) is None
