"""Consultations written straight into the database with chosen times, for the statistics tests and the
benchmark: the statistics read history (a year of cases), which the API cannot backdate."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from domain.calendar import JST
from infra.db.tables import (
    ConsultationCategoryRow,
    ConsultationRow,
    ReferralRow,
    UserRow,
)
from infra.db.tables_requests import RequestRow


@dataclass
class Case:
    created_at: datetime
    owner: int = 0  # index of the consulter: the same index twice is a re-consultation
    channel: str = "web"
    relation: str = "self"
    categories: list[str] = field(default_factory=lambda: ["RIGHTS.DEFAMATION"])
    platforms: list[str] = field(default_factory=lambda: ["x"])
    urgency_flags: list[str] = field(default_factory=list)
    first_answer_after: timedelta | None = None
    due_after: timedelta = timedelta(days=3)
    referrals: list[str] = field(default_factory=list)  # desk codes, referred a day after opening
    # Requests (kind, status), drafted a day after opening and, unless still a draft, sent a day later.
    requests: list[tuple[str, str]] = field(default_factory=list)


def jst(y: int, m: int, d: int, h: int = 12) -> datetime:
    return datetime(y, m, d, h, tzinfo=JST)


def rows_for(cases: list[Case], owners: list[uuid.UUID], staff: uuid.UUID) -> dict[str, list[dict]]:  # type: ignore[type-arg]
    consultations, categories, referrals, requests = [], [], [], []
    for c in cases:
        cid = uuid.uuid4()
        created = c.created_at.astimezone(UTC)
        consultations.append(
            {
                "id": cid,
                "owner_id": owners[c.owner],
                "channel": c.channel,
                "relation": c.relation,
                "title": "統計用の相談",
                "narrative": "掲示板に実名で悪口を書かれた。",
                "desired_outcomes": ["delete"],
                "platforms": c.platforms,
                "platform_other": None,
                "tried": None,
                "victim_is_minor": None,
                "status": "answered" if c.first_answer_after else "submitted",
                "priority": "normal",
                "urgent": bool(c.urgency_flags),
                "urgency_flags": c.urgency_flags,
                "assignee_id": None,
                "consent_terms_version": "2026-04",
                "consented_at": created,
                "created_at": created,
                "updated_at": created,
                "first_answer_due_at": created + c.due_after,
                "first_answered_at": created + c.first_answer_after if c.first_answer_after else None,
                "closed_at": None,
                "consulter_read_at": None,
                "version": 1,
            }
        )
        categories += [
            {"consultation_id": cid, "category_code": code, "created_at": created} for code in c.categories
        ]
        referrals += [
            {
                "id": uuid.uuid4(),
                "consultation_id": cid,
                "desk_code": desk,
                "reason": "専門の窓口へ",
                "state": "proposed",
                "created_by": staff,
                "created_at": created + timedelta(days=1),
                "updated_at": created + timedelta(days=1),
            }
            for desk in c.referrals
        ]
        requests += [
            {
                "id": uuid.uuid4(),
                "consultation_id": cid,
                "created_by": staff,
                "kind": kind,
                "status": status,
                "sent_at": None if status == "drafted" else request_sent(c),
                "created_at": created + timedelta(days=1),
                "updated_at": created + timedelta(days=2),
            }
            for kind, status in c.requests
        ]
    return {"consultation": consultations, "category": categories, "referral": referrals, "request": requests}


def request_sent(c: Case) -> datetime:
    return c.created_at.astimezone(UTC) + timedelta(days=2)


async def seed(container, cases: list[Case], *, chunk: int = 5000) -> None:  # type: ignore[no-untyped-def]
    """Writes the consulters (one per distinct owner index), a staff member, the cases and their rows."""
    now = container.clock.now()
    count = max((c.owner for c in cases), default=0) + 1
    users = [
        {
            "id": uuid.uuid4(),
            "email": f"stat-{uuid.uuid4().hex}@example.jp",
            "role": "consulter",
            "created_at": now,
            "updated_at": now,
        }
        for _ in range(count + 1)
    ]
    users[-1]["role"] = "consultant"
    owners, staff = [u["id"] for u in users[:-1]], users[-1]["id"]
    async with container.engine.begin() as conn:
        for k in range(0, len(users), chunk):
            await conn.execute(insert(UserRow), users[k : k + chunk])
        for k in range(0, len(cases), chunk):
            part = rows_for(cases[k : k + chunk], owners, staff)
            await conn.execute(insert(ConsultationRow), part["consultation"])
            if part["category"]:
                await conn.execute(insert(ConsultationCategoryRow), part["category"])
            if part["referral"]:
                await conn.execute(insert(ReferralRow), part["referral"])
            if part["request"]:
                await conn.execute(insert(RequestRow), part["request"])


CHANNELS = ["web", "line", "chatbot"]
RELATIONS = ["self", "family", "school", "agent", "provider", "other"]
CATEGORIES = [
    "RIGHTS.DEFAMATION",
    "RIGHTS.PRIVACY_ID",
    "ILLEGAL.OBSCENE",
    "PUBLIC.CRIME_SOLICIT",
    "YOUTH.BULLYING",
]
PLATFORMS = ["x", "meta", "youtube", "five_ch", "bakusai", "google_search", "ameba"]
FLAGS = ["threat", "suicide", "minor"]


def random_cases(n: int, fiscal_year: int, rng: random.Random, owners: int | None = None) -> list[Case]:
    """`n` cases spread over the fiscal year, with repeats among `owners` consulters."""
    start = jst(fiscal_year, 4, 1, 0)
    span = (jst(fiscal_year + 1, 4, 1, 0) - start).total_seconds()
    owners = owners or max(1, n * 3 // 4)
    out = []
    for _ in range(n):
        answered = rng.random() < 0.8
        out.append(
            Case(
                created_at=start + timedelta(seconds=rng.random() * span),
                owner=rng.randrange(owners),
                channel=rng.choice(CHANNELS),
                relation=rng.choice(RELATIONS),
                categories=rng.sample(CATEGORIES, rng.choice([1, 1, 2])),
                platforms=rng.sample(PLATFORMS, rng.choice([0, 1, 1, 2])),
                urgency_flags=rng.sample(FLAGS, rng.choice([0, 0, 0, 1])),
                first_answer_after=timedelta(minutes=rng.randrange(30, 60 * 24 * 6)) if answered else None,
                referrals=rng.sample(["ihaho", "moj_jinken_110"], rng.choice([0, 0, 1])),
            )
        )
    return out


REQUEST_KINDS = ["platform_form", "removal_letter", "disclosure_request", "search_delisting"]
REQUEST_STATUSES = ["drafted", "sent", "acknowledged", "removed", "partly_removed", "refused", "no_answer"]


def with_requests(cases: list[Case], rng: random.Random) -> list[Case]:
    """Gives some of `cases` removal or disclosure requests (their own random stream: the cases stay as they
    were drawn)."""
    for c in cases:
        c.requests = [
            (rng.choice(REQUEST_KINDS), rng.choice(REQUEST_STATUSES)) for _ in range(rng.choice([0, 0, 1, 2]))
        ]
    return cases
