"""0019_consents on a database that already holds consultations and referrals: the consents given before the
ledger existed are carried over (each consultation's terms version and sensitive-data consent, each referral
the consulter consented to), so a consented referral can still be made after the upgrade."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from infra.db.migrate import downgrade, upgrade
from tests.integration.test_evidence_migration import _insert, _run


def test_existing_consents_are_carried_into_the_ledger(fresh_database: str) -> None:
    url = fresh_database
    # The session's migration database may already be past 0019 (another migration test ran first).
    upgrade(url, "0017_evidence_edits")
    downgrade(url, "0017_evidence_edits")
    at = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    consented_at = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
    owner, staff, case = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    consented, proposed = uuid.uuid4(), uuid.uuid4()
    _insert(
        url,
        "app_user",
        {"id": owner, "email": f"old-{owner.hex[:8]}@example.jp", "role": "consulter", "locale": "ja"},
    )
    _insert(
        url,
        "app_user",
        {"id": staff, "email": f"staff-{staff.hex[:8]}@example.jp", "role": "consultant", "locale": "ja"},
    )
    _insert(
        url,
        "consultation",
        {
            "id": case,
            "owner_id": owner,
            "consent_terms_version": "2026-11",
            "consented_at": at,
            "created_at": at,
        },
    )
    for rid, desk in ((consented, "houterasu"), (proposed, "sia_hotline")):
        _insert(
            url,
            "referral",
            {"id": rid, "consultation_id": case, "desk_code": desk, "reason": "紹介", "created_by": staff},
        )
        _insert(
            url,
            "referral_event",
            {"id": uuid.uuid4(), "referral_id": rid, "actor_id": staff, "to_state": "proposed", "at": at},
        )
    _insert(
        url,
        "referral_event",
        {
            "id": uuid.uuid4(),
            "referral_id": consented,
            "actor_id": owner,
            "from_state": "proposed",
            "to_state": "consented",
            "at": consented_at,
        },
    )

    upgrade(url, "0019_consents")
    rows = _run(
        url,
        "SELECT user_id, purpose, action, source, terms_version, consultation_id, referral_id, desk_code "
        "FROM consent WHERE consultation_id = :case",
        {"case": case.hex if url.startswith("sqlite") else case},
    )

    def hexed(value: object) -> str | None:
        return None if value is None else str(value).replace("-", "")

    got = sorted((hexed(r[0]), r[1], r[2], r[3], r[4], hexed(r[5]), hexed(r[6]), r[7]) for r in rows)
    assert got == sorted(
        [
            (owner.hex, "terms", "granted", "intake", "2026-11", case.hex, None, None),
            (owner.hex, "sensitive_data", "granted", "intake", None, case.hex, None, None),
            (owner.hex, "desk_sharing", "granted", "referral", None, case.hex, consented.hex, "houterasu"),
        ]
    )
    assert _run(url, "SELECT count(*) FROM auth_session WHERE reauthenticated_at IS NOT NULL") == [(0,)]
    upgrade(url, "head")  # and on to whatever follows

    downgrade(url, "0017_evidence_edits")
    assert _run(
        url,
        "SELECT count(*) FROM referral WHERE consultation_id = :case",
        {"case": case.hex if url.startswith("sqlite") else case},
    ) == [(2,)]
    downgrade(url, "base")  # the session shares this database: the next migration test starts from empty
