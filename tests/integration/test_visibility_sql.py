"""infra/db/visibility.py on the real database: each visibility of domain/policy.py selects exactly the rows it
names, for consultations and for what hangs off them (answer drafts, letters, the audit trail, and a case's
messages, evidence, referrals and requests, which filter through their consultation themselves)."""

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
        # The read's statement is built once per kind of visibility: the next person of the same kind gets
        # their own rows, not the first one's.
        assert await seen(OwnedBy(other.id)) == {t}
        assert await seen(OwnedBy(uuid.uuid4())) == set()
        assert await seen(AssignedTo(supervisor.id)) == {r}
        assert await seen(AssignedTo(consultant.id)) == set()
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


async def test_a_consultations_parts_are_read_only_with_the_consultation(
    client, people, container, clock
) -> None:  # type: ignore[no-untyped-def]
    """Messages, evidence, referrals and requests (with their history and clocks) filter by the caller's
    visibility in their own read: called straight with the real consultation id, as a use case that forgot
    `load_visible` would, another consulter and a consultant the case is not assigned to get nothing."""
    from domain.consultations import MessageKind
    from tests.api.test_requests import START, add_evidence, create_request, move

    clock.set(START)
    owner, other = await people.create(), await people.create()
    assignee, colleague = await people.create(Role.consultant), await people.create(Role.consultant)
    cid = (await open_consultation(client, owner))["id"]
    await take(client, assignee, cid)
    base = f"/v1/consultations/{cid}"
    posted = await client.post(f"{base}/messages", headers=owner.headers, json={"body": "追加の相談です"})
    assert posted.status_code == 201, posted.text
    noted = await client.post(
        f"{base}/messages", headers=assignee.headers, json={"body": "内部メモ", "kind": "note"}
    )
    assert noted.status_code == 201, noted.text
    item = await add_evidence(client, owner, cid, "2026-11-20T21:15:00+09:00", "https://x.com/e/status/7")
    referred = await client.post(
        f"{base}/referrals", headers=assignee.headers, json={"desk_code": "houterasu", "reason": "弁護士へ"}
    )
    assert referred.status_code == 201, referred.text
    request = await create_request(client, owner, cid, evidence_ids=[item["id"]])
    assert (await move(client, owner, cid, request["id"], "sent")).status_code == 200
    c = uuid.UUID(cid)
    message_id = uuid.UUID(posted.json()["id"])
    evidence_id, referral_id, request_id = (
        uuid.UUID(x) for x in (item["id"], referred.json()["id"], request["id"])
    )
    kinds = list(MessageKind)

    async with container.consultations.uow() as uow:

        async def parts(visibility) -> dict[str, object]:  # type: ignore[no-untyped-def]
            """What each child read answers with this visibility (ids, or whether one was found)."""
            requests, consultations, referrals = uow.requests, uow.consultations, uow.referrals
            return {
                "messages": {m.id for m in await consultations.messages(c, kinds, visibility)},
                "message": await consultations.get_message(c, message_id, kinds, visibility) is not None,
                "evidence": [e.id for e in await consultations.evidence(c, visibility)],
                "evidence item": await consultations.get_evidence(c, evidence_id, visibility) is not None,
                "referrals": [r.id for r in await referrals.for_consultation(c, visibility)],
                "referral": await referrals.get(c, referral_id, visibility) is not None,
                "referral events": len(await referrals.events(referral_id, visibility)),
                "requests": [r.id for r in await requests.for_consultations([c], visibility)],
                "requests through": [
                    r.id for r in await requests.for_consultations([c], visibility, through=c)
                ],
                "request": await requests.get([c], request_id, visibility) is not None,
                "request through": await requests.get([c], request_id, visibility, through=c) is not None,
                "request events": len(await requests.events([request_id], visibility)),
                "request events through": len(await requests.events([request_id], visibility, through=c)),
                "clocks": len(await requests.clocks([c], visibility)),
                "clocks through": len(await requests.clocks([c], visibility, through=c)),
            }

        def nothing(found: dict[str, object]) -> bool:
            return not any(found.values())

        # The owner and the assignee see every part (so the empty answers below are not empty by accident).
        for seen in (OwnedBy(owner.id), AssignedToOrUnassigned(assignee.id), AssignedTo(assignee.id), All()):
            found = await parts(seen)
            assert all(found.values()), (seen, found)
            assert found["evidence"] == [evidence_id] and found["requests through"] == [request_id]
            assert found["clocks"] and found["request events"] == 2  # created, sent
        # Another consulter, a consultant the case is not assigned to, the advisor with nothing in review.
        for unseen in (
            OwnedBy(other.id),
            AssignedToOrUnassigned(colleague.id),
            AssignedTo(colleague.id),
            InReview(),
            Nothing(),
        ):
            assert nothing(await parts(unseen)), unseen


async def test_requests_carried_over_are_seen_through_the_case_that_follows_and_only_through_it(
    client, people, container, clock
) -> None:  # type: ignore[no-untyped-def]
    """A case that follows an earlier one of the same person carries its requests and clocks: whoever sees
    the new case sees them through it (the earlier case may be worked by someone else), nobody sees them
    through a case of another person, and without `through` each row needs its own case to be visible."""
    from tests.api.test_requests import START, add_evidence, create_request, move

    clock.set(START)
    owner, other = await people.create(), await people.create()
    earlier_staff, new_staff = await people.create(Role.consultant), await people.create(Role.consultant)
    earlier = (await open_consultation(client, owner))["id"]
    item = await add_evidence(client, owner, earlier, "2026-11-20T21:15:00+09:00", "https://x.com/e/status/8")
    request = await create_request(client, owner, earlier, evidence_ids=[item["id"]])
    assert (await move(client, owner, earlier, request["id"], "sent")).status_code == 200
    new = (await open_consultation(client, owner))["id"]
    theirs = (await open_consultation(client, other))["id"]
    await take(client, earlier_staff, earlier)
    await take(client, new_staff, new)
    e, n, t, r = (uuid.UUID(x) for x in (earlier, new, theirs, request["id"]))
    async with container.consultations.uow() as uow:
        await uow.requests.link(n, e)  # what POST .../follows stores (its checks are tested in test_requests)
        await uow.commit()

    async with container.consultations.uow() as uow:

        async def carried(visibility, through: uuid.UUID | None, chain=(n, e)) -> tuple[list, int, int, bool]:  # type: ignore[no-untyped-def]
            rs = await uow.requests.for_consultations(list(chain), visibility, through=through)
            clocks = await uow.requests.clocks(list(chain), visibility, through=through)
            events = await uow.requests.events([r], visibility, through=through)
            one = await uow.requests.get(list(chain), r, visibility, through=through)
            return [x.id for x in rs], len(clocks), len(events), one is not None

        # Through the new case: its owner, and its consultant though the earlier case is someone else's work.
        for seen in (OwnedBy(owner.id), AssignedToOrUnassigned(new_staff.id), AssignedTo(new_staff.id)):
            ids, clocks, events, one = await carried(seen, n)
            assert ids == [r] and clocks and events == 2 and one, seen
        # The earlier case's consultant does not see the new case, so nothing through it.
        assert await carried(AssignedTo(earlier_staff.id), n) == ([], 0, 0, False)
        # Without `through`, the new case's consultant sees only rows of cases they see themselves.
        assert await carried(AssignedTo(new_staff.id), None) == ([], 0, 0, False)
        assert (await carried(AssignedTo(earlier_staff.id), None))[0] == [r]
        # Another person reads through a case of their own, naming the earlier case's id: nothing.
        assert await carried(OwnedBy(other.id), t, chain=(t, e)) == ([], 0, 0, False)
        assert await carried(AssignedToOrUnassigned(new_staff.id), t, chain=(t, e)) == ([], 0, 0, False)


async def test_a_statement_built_for_a_kind_of_visibility_refuses_to_run_without_its_viewer(
    container,
) -> None:  # type: ignore[no-untyped-def]
    """A statement built once for every person of a kind (infra/db/visibility.py `consultations_of_kind`)
    carries the person as a required parameter: run without it, it fails instead of matching anyone."""
    import pytest
    from sqlalchemy import select
    from sqlalchemy.exc import StatementError

    from infra.db import visibility as visible
    from infra.db.tables import ConsultationRow

    statement = select(ConsultationRow.id).where(visible.consultations_of_kind(OwnedBy))
    async with container.consultations.uow() as uow:
        with pytest.raises(StatementError, match="viewer"):
            await uow.db.execute(statement)
        assert list(await uow.db.execute(statement, visible.viewer_parameter(OwnedBy(uuid.uuid4())))) == []
    with pytest.raises(TypeError):
        visible.consultations(OwnedBy(None))  # type: ignore[arg-type]
