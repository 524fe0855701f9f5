"""Consultations: intake, the message thread, evidence, status transitions, assignment and the queue."""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from domain.actors import Actor, Role
from domain.bundle import BundleItem, EvidenceBundle, Original
from domain.calendar import HolidayCalendar, due_at
from domain.case_keys import CaseKey, file_digest
from domain.consents import record_intake
from domain.custody import Action
from domain.desks import DeskDirectory
from domain.errors import (
    Conflict,
    Forbidden,
    InvalidState,
    NotFound,
    PreconditionFailed,
    QuotaExceeded,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
)
from domain.knowledge_model import Desk, Knowledge
from domain.policy import (
    ASSIGNEES,
    Nothing,
    Visibility,
    consultation_visibility,
    ensure_caseworker,
    ensure_consulter,
    ensure_may_ask_for_originals,
    ensure_may_assign,
    ensure_may_read_consultations,
    ensure_may_take,
    ensure_may_work,
    ensure_supervisor,
    evidence_bundle_visibility,
    evidence_visibility,
    message_visibility,
    queue_filters_allowed,
)
from domain.ports import CaseUnitOfWork, Clock, ConsultationUnitOfWork, UnitOfWorkFactory
from domain.text import fold_url_prefix
from domain.triage import TriageRules, UrgencyFlag


class Status(enum.StrEnum):
    submitted = "submitted"
    in_progress = "in_progress"
    answered = "answered"
    closed = "closed"
    withdrawn = "withdrawn"


OPEN_STATUSES = frozenset({Status.submitted, Status.in_progress, Status.answered})


class Priority(enum.StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
    urgent = "urgent"


class MessageKind(enum.StrEnum):
    consulter = "consulter"  # written by the person consulting
    answer = "answer"  # a staff answer the consulter reads
    note = "note"  # internal: no route ever shows it to a consulter


class EvidenceGap(enum.StrEnum):
    absolute_time = "absolute_time"
    full_url = "full_url"
    account_id = "account_id"
    context = "context"


@dataclass(slots=True)
class Consent:
    terms_version: str
    agreed_at: datetime


@dataclass(slots=True)
class Consultation:
    id: uuid.UUID
    owner_id: uuid.UUID
    channel: str
    relation: str
    title: str
    narrative: str
    categories: list[str]
    desired_outcomes: list[str]
    platforms: list[str]
    consent: Consent
    created_at: datetime
    updated_at: datetime
    first_answer_due_at: datetime
    victim_is_minor: bool | None = None
    platform_other: str | None = None
    tried: str | None = None
    status: Status = Status.submitted
    priority: Priority = Priority.normal
    urgent: bool = False
    urgency_flags: list[str] = field(default_factory=list)
    assignee_id: uuid.UUID | None = None
    first_answered_at: datetime | None = None
    closed_at: datetime | None = None
    consulter_read_at: datetime | None = None
    version: int = 1
    unread_answers: int = 0  # filled by list queries for the owner
    # The earliest end of the access-log clocks of its evidence (domain/clocks.py): act before it.
    time_to_act_at: datetime | None = None
    # The earlier consultation of the same person this one follows (issue 15 §5).
    follows_id: uuid.UUID | None = None

    def overdue(self, now: datetime) -> bool:
        return (
            self.first_answered_at is None and self.status in OPEN_STATUSES and self.first_answer_due_at < now
        )


@dataclass(slots=True)
class Transition:
    id: uuid.UUID
    consultation_id: uuid.UUID
    actor_id: uuid.UUID
    from_status: Status | None
    to_status: Status
    at: datetime
    reason: str | None = None


@dataclass(slots=True)
class Message:
    id: uuid.UUID
    consultation_id: uuid.UUID
    author_id: uuid.UUID
    kind: MessageKind
    body: str
    created_at: datetime


@dataclass(slots=True)
class EvidenceFile:
    """A file kept twice (issue 16 §2): the cleaned copy staff view (`storage_key`, `size`, `copy_sha256`) and
    the original exactly as received (`original_key`, `original_size`, `sha256`), which no route serves: only
    `ConsultationService.export_original` reads it. Files uploaded before originals were kept have
    `sha256`/`original_key` None (the migration moved their hash, which was the copy's, to `copy_sha256`).
    `sealed`: uploaded through a supervisor's upload slot in a hash-only case; only the assignee sees it."""

    storage_key: str
    content_type: str
    size: int
    sha256: str | None
    copy_sha256: str = ""
    original_key: str | None = None
    original_size: int | None = None
    sealed: bool = False


@dataclass(frozen=True, slots=True)
class ImageHashes:
    """What identifies a picture without the picture: the SHA-256 of the file's bytes, its PDQ perceptual hash
    (256 bits as 64 hex digits, ThreatExchange's bit order) with PDQ's quality (0-100), and its size in pixels.
    Computed on the person's device for intimate images (infra/image_hashes.py is the reference), or by the
    server from an uploaded image."""

    sha256: str
    pdq: str
    pdq_quality: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class UploadSlot:
    """A supervisor's permission for one file upload to one evidence item in a hash-only case."""

    opened_by: uuid.UUID
    opened_at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class SimilarItem:
    """Another evidence item whose PDQ hash is within the match distance: ids and the distance, nothing else."""

    evidence_id: uuid.UUID
    consultation_id: uuid.UUID
    distance: int
    created_at: datetime


@dataclass(slots=True)
class Evidence:
    id: uuid.UUID
    consultation_id: uuid.UUID
    created_by: uuid.UUID
    created_at: datetime
    url: str | None = None
    platform: str | None = None
    posted_at: datetime | None = None
    captured_at: datetime | None = None
    poster_account: str | None = None
    excerpt: str | None = None
    notes: str | None = None
    context_captured: bool = False
    file: EvidenceFile | None = None
    image_hashes: ImageHashes | None = None
    upload_slot: UploadSlot | None = None
    version: int = 1

    def missing(self) -> list[EvidenceGap]:
        """What a deletion request or disclosure claim will still need (domain.md §5)."""
        gaps = []
        if self.posted_at is None:
            gaps.append(EvidenceGap.absolute_time)
        if not is_full_post_url(self.url):
            gaps.append(EvidenceGap.full_url)
        if not self.poster_account:
            gaps.append(EvidenceGap.account_id)
        if not self.context_captured:
            gaps.append(EvidenceGap.context)
        return gaps


def is_full_post_url(url: str | None) -> bool:
    """A URL that points at a post, not at a site's front page or a search result."""
    if not url:
        return False
    parts = urlsplit(url)
    path = parts.path.strip("/")
    if not path:
        return False
    searchy = any(s in parts.netloc for s in ("google.", "bing.", "yahoo.co.jp")) and path.startswith(
        "search"
    )
    return not searchy


# Cases in which the centre keeps no picture by default (issue 16 §1): private sexual images, child sexual
# abuse material and voyeur images, and any case whose victim is a minor. Their evidence is a URL, a
# description and hashes computed on the person's device.
HASH_ONLY_CATEGORIES = frozenset({"RIGHTS.PRIVATE_SEXUAL", "ILLEGAL.CSAM", "ILLEGAL.SEXUAL_FILMING"})
# What the refusal points to, all from the desk directory (domain/knowledge/desks.yaml, with sources).
HASH_ONLY_DESKS_ADULT = ("stopncii", "take_it_down", "police_8103", "paps", "ihc")
HASH_ONLY_DESKS_MINOR = ("take_it_down", "police_8103", "child_guidance_189", "paps", "ihc")

IMAGES_NOT_ACCEPTED = (
    "この相談では、性的な画像そのものはお預かりしません（拡散を防ぐため、センターにも送らないでください）。"
    "証拠は、画像が載っているURL・説明と、お使いの端末で計算したハッシュ値（SHA-256とPDQ）で記録できます。"
    "18歳以上の方の画像は StopNCII、18歳未満のときに撮られた画像は Take It Down に、"
    "端末から画像を送らずにハッシュだけを登録すると、参加しているサービスで拡散を止められます。"
    "警察の性犯罪被害相談電話 #8103 にも相談できます（desks に連絡先があります）。"
    " / This consultation does not take intimate images: record the URL, a description and the hashes your"
    " device computes. StopNCII (adults) and Take It Down (images taken under 18) take the hash only;"
    " the police line #8103 and the desks listed can help."
)
MINOR_IMAGES_NEVER_ACCEPTED = (
    "18歳未満の方が写っている可能性がある相談では、画像はどなたからもお預かりしません。"
    "画像を保存・転送せず、URLと説明、端末で計算したハッシュ値で記録してください。"
    "18歳未満のときに撮られた性的な画像は Take It Down でハッシュだけを登録でき、"
    "警察（#8103、緊急時は110）や児童相談所（189）にも相談できます（desks に連絡先があります）。"
    " / Images are never accepted in a consultation about a minor, from anyone: record the URL, a"
    " description and device-computed hashes; Take It Down, the police (#8103, 110) and 189 can help."
)


def is_hash_only(c: Consultation) -> bool:
    return bool(c.victim_is_minor) or bool(HASH_ONLY_CATEGORIES.intersection(c.categories))


def pdq_distance(a: str, b: str) -> int:
    """Hamming distance between two PDQ hashes (64 hex digits each)."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def check_image_hashes(h: ImageHashes, *, min_quality: int) -> ImageHashes:
    """Strict: exactly 64 hex digits for each hash (stored lower-case), a PDQ quality PDQ itself trusts, and
    a plausible picture size. The API's schema checks the same; this is the rule for every front door."""

    def hex64(value: str, name: str) -> str:
        value = value.lower()
        if len(value) != 64 or any(ch not in "0123456789abcdef" for ch in value):
            raise ValidationFailed("invalid_hash", field=f"image_hashes.{name}")
        return value

    sha, pdq = hex64(h.sha256, "sha256"), hex64(h.pdq, "pdq")
    if not 0 <= h.pdq_quality <= 100:
        raise ValidationFailed("invalid_hash", field="image_hashes.pdq_quality")
    if h.pdq_quality < min_quality:
        raise ValidationFailed(
            "pdq_quality_too_low", field="image_hashes.pdq_quality", min_quality=min_quality
        )
    if not (1 <= h.width <= 100_000 and 1 <= h.height <= 100_000):
        raise ValidationFailed("invalid_image_size", field="image_hashes")
    return ImageHashes(sha, pdq, h.pdq_quality, h.width, h.height)


def check_evidence_url(url: str) -> str:
    """Stored as inert text and never fetched; still only http(s), with a host and no credentials."""
    url = fold_url_prefix(url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise ValidationFailed("invalid_url", field="url")
    if any(ch.isspace() for ch in url):
        raise ValidationFailed("invalid_url", field="url")
    return url


@dataclass(frozen=True, slots=True)
class Intake:
    channel: str
    relation: str
    title: str
    narrative: str
    categories: list[str]
    desired_outcomes: list[str]
    platforms: list[str]
    terms_version: str
    agreed_to_terms: bool
    agreed_to_sensitive_data: bool
    victim_is_minor: bool | None = None
    platform_other: str | None = None
    tried: str | None = None


@dataclass(frozen=True, slots=True)
class IntakeResult:
    consultation: Consultation
    urgency: list[UrgencyFlag]
    urgency_desks: list[Desk]
    emergency_desks: list[Desk]


@dataclass(frozen=True, slots=True)
class PostedMessage:
    """A posted message and, when a consulter's follow-up reveals danger, what intake would have shown."""

    message: Message
    consultation: Consultation
    urgency: list[UrgencyFlag] = field(default_factory=list)
    urgency_desks: list[Desk] = field(default_factory=list)
    emergency_desks: list[Desk] = field(default_factory=list)


# A follow-up that raises one of these alerts staff at once; `minor` alone is a fact about the victim, not
# a new danger, and is only recorded.
DANGER_FLAGS = frozenset({"threat", "suicide", "sexual_image", "physical_danger"})


@dataclass(frozen=True, slots=True)
class QueueFilter:
    status: Status | None = None
    category: str | None = None
    category_codes: frozenset[str] = frozenset()  # the category and, for a group, its leaves (set by list)
    urgent: bool | None = None
    priority: Priority | None = None
    assignee_id: uuid.UUID | None = None
    unassigned: bool = False
    channel: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    overdue: bool | None = None


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in a list ordered by (a time, id): when an item was created, or a clock's due time."""

    at: datetime
    id: uuid.UUID


# What a correction may change: what was recorded about the post, never the file or hashes received.
CORRECTABLE_EVIDENCE_FIELDS = frozenset(
    {"url", "platform", "posted_at", "captured_at", "poster_account", "excerpt", "notes", "context_captured"}
)


def _canonical_value(value: object) -> str | bool | None:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def _digest(values: Mapping[str, object], key: bytes) -> str:
    """HMAC-SHA256 of sorted-key compact JSON: a correction proves the earlier record without repeating it. Keyed,
    so whoever holds the chain (a bundle reader) cannot test guesses of a short earlier value against it; the
    centre, holding the key, can still show which earlier value it was."""
    return hmac.new(
        key,
        json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(),
        hashlib.sha256,
    ).hexdigest()


@dataclass(frozen=True, slots=True)
class EvidenceUsage:
    """What one consultation and its consulter already hold: the bounds are checked against this."""

    items: int
    consultation_bytes: int
    consulter_bytes: int


@dataclass(frozen=True, slots=True)
class ConsultationPolicy:
    terms_version: str = "2026-11"
    # Key of the digests that prove an earlier evidence record on the chain (derived from the master secret).
    digest_key: bytes = field(default=b"madoguchi-development-digest-key", repr=False)
    first_answer_business_days: int = 3
    office_closes: time = time(17, 0)
    reopen_window: timedelta = timedelta(days=30)
    intake_per_hour: int = 5
    # Bounds that keep one account from filling the disk or flooding a staff thread (settings say the values).
    evidence_items_per_consultation: int = 100
    evidence_bytes_per_consultation: int = 100 * 1_048_576
    evidence_bytes_per_consulter: int = 300 * 1_048_576
    consulter_messages_per_hour: int = 30
    # PDQ: hashes of quality below 50 are too featureless to match on, and 31 bits of 256 is the distance
    # ThreatExchange's PDQ documentation treats as the same picture (hashing/pdq in facebook/ThreatExchange).
    pdq_min_quality: int = 50
    pdq_match_distance: int = 31


class EvidenceFiles(Protocol):
    """Where evidence files live. `store` recognises the type by content, strips metadata, hashes and keeps
    the bytes under a name of its own choosing; it raises ValidationFailed for anything it will not keep."""

    async def store(self, data: bytes, key: CaseKey) -> EvidenceFile:
        """Keeps the file encrypted with the case's key (issue 17 §1)."""

    async def open(self, storage_key: str, key: CaseKey) -> AsyncIterator[bytes]:
        """The stored bytes in chunks, decrypted with the case's key; raises before the first chunk when they
        cannot be read."""

    async def delete(self, storage_key: str) -> None:
        """Remove stored bytes; a key that is already gone is not an error."""


class ImageHasher(Protocol):
    """Hashes of an image file (its SHA-256, PDQ and size), or None for a file that is not an image."""

    async def hashes(self, data: bytes) -> ImageHashes | None: ...


class ConsultationRepository(Protocol):
    async def add(self, c: Consultation) -> None: ...

    async def get(self, consultation_id: uuid.UUID, visibility: Visibility) -> Consultation | None: ...

    async def many(self, ids: Sequence[uuid.UUID], visibility: Visibility) -> dict[uuid.UUID, Consultation]:
        """The visible ones among these, by id, in one round trip."""

    async def update(self, c: Consultation, *, expected_version: int) -> bool: ...

    async def page(
        self,
        visibility: Visibility,
        queue_filter: QueueFilter,
        *,
        now: datetime,
        after: Cursor | None,
        limit: int,
        listing: bool = False,
    ) -> list[Consultation]:
        """Newest first by (created_at, id). `listing`: the records a list shows, their `narrative` and `tried`
        left empty (not read)."""
        ...

    async def lock_owner(self, owner_id: uuid.UUID) -> bool:
        """Hold the owner's account row until commit (the lock erasure takes: a case made while the account is
        erased either commits first, and is shredded with the others, or finds the account gone); whether the
        account is still active."""

    async def created_times_since(self, owner_id: uuid.UUID, since: datetime, newest: int) -> list[datetime]:
        """When each of the owner's `newest` latest cases created after `since` was created, oldest first (one
        created at `since` exactly is outside). Read after `lock_owner`, in a statement of its own: on PostgreSQL a
        statement sees what was committed when it began, so times read in the locking statement would miss a
        case that another intake of the same person committed while this one waited for the lock."""

    async def mark_read(self, consultation_id: uuid.UUID, at: datetime) -> None: ...

    async def add_transition(self, t: Transition) -> None: ...

    async def transitions(
        self, consultation_id: uuid.UUID, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[Transition]:
        """Oldest first by (at, id); with `after`, the transitions after that position; at most `limit`."""
        ...

    async def add_message(self, m: Message) -> None: ...

    async def messages(
        self,
        consultation_id: uuid.UUID,
        kinds: Sequence[MessageKind],
        visibility: Visibility,
        *,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        """Oldest first; with `after`, the messages after that position; at most `limit`. None when the
        consultation is not visible (domain/policy.py message_visibility), whoever read it before."""
        ...

    async def get_message(
        self,
        consultation_id: uuid.UUID,
        message_id: uuid.UUID,
        kinds: Sequence[MessageKind],
        visibility: Visibility,
    ) -> Message | None: ...

    async def message_times_since(
        self, consultation_id: uuid.UUID, kind: MessageKind, since: datetime
    ) -> list[datetime]:
        """When each message of this kind was posted after `since` (one posted at `since` exactly has left a
        window that starts there), oldest first. Locks the consultation row for the rest of the transaction
        (PostgreSQL), so concurrent posts are counted one after another."""
        ...

    async def add_evidence(self, e: Evidence) -> None: ...

    async def evidence(
        self,
        consultation_id: uuid.UUID,
        visibility: Visibility,
        *,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> list[Evidence]:
        """Oldest first; with `after`, the items after that position; at most `limit`. None when the
        consultation is not visible (domain/policy.py evidence_visibility)."""
        ...

    async def update_evidence(self, e: Evidence, *, expected_version: int) -> bool:
        """Write a corrected item as version `e.version` if it is still at `expected_version`."""
        ...

    async def evidence_in_requests(self, evidence_id: uuid.UUID) -> bool:
        """Whether a request names the item (as what it concerns or as the reply received)."""
        ...

    async def delete_evidence(self, evidence_id: uuid.UUID) -> None: ...

    async def evidence_usage(self, consultation_id: uuid.UUID, owner_id: uuid.UUID) -> EvidenceUsage:
        """Items of the consultation and stored bytes of it and of all its owner's consultations. Locks the
        consultation row for the rest of the transaction (PostgreSQL), so concurrent additions cannot both pass."""
        ...

    async def get_evidence(
        self, consultation_id: uuid.UUID, evidence_id: uuid.UUID, visibility: Visibility
    ) -> Evidence | None: ...

    async def attach_file(self, evidence_id: uuid.UUID, file: EvidenceFile) -> None: ...

    async def set_image_hashes(self, evidence_id: uuid.UUID, hashes: ImageHashes) -> None: ...

    async def open_upload_slot(self, evidence_id: uuid.UUID, slot: UploadSlot) -> bool:
        """Records the slot unless one is already open; False when one was."""

    async def pdq_hashes(self) -> list[tuple[uuid.UUID, uuid.UUID, str, datetime]]:
        """(evidence id, consultation id, PDQ hash, created at) of every item that has a PDQ hash."""

    async def staff_role(self, user_id: uuid.UUID) -> Role | None: ...

    async def supervisor_ids(self) -> list[uuid.UUID]:
        """Active supervisors, who are alerted when an unassigned case turns urgent."""


HOUR = timedelta(hours=1)


def _refuse_past(limit: int, recent: list[datetime], now: datetime, code: str) -> None:
    """Refuse a consulter's action when `limit` of them (`recent`, oldest first) fall in the hour up to `now`;
    Retry-After says when the oldest that counts leaves the window. The hour is (now - 1 h, now]: one done
    exactly an hour ago no longer counts, so a client that waits the Retry-After it was given (whole seconds,
    rounded up, from the one clock reading `now`) is not refused again."""
    if len(recent) >= limit:
        frees_at = recent[len(recent) - limit] + HOUR
        raise RateLimited(math.ceil((frees_at - now).total_seconds()), code)


class ConsultationService:
    def __init__(
        self,
        uow: UnitOfWorkFactory[CaseUnitOfWork],
        clock: Clock,
        knowledge: Knowledge,
        triage: TriageRules,
        holidays: HolidayCalendar,
        policy: ConsultationPolicy,
        files: EvidenceFiles,
        desks: DeskDirectory,
        hasher: ImageHasher | None = None,
        after_evidence: Callable[[CaseUnitOfWork, Consultation], Awaitable[object]] | None = None,
    ) -> None:
        self.files = files
        self.hasher = hasher
        self.desks = desks
        self.uow = uow
        self.clock = clock
        self.knowledge = knowledge
        self.triage = triage
        self.holidays = holidays
        self.policy = policy
        # Recomputes the consultation's clocks in the same unit of work when its evidence changes
        # (domain/requests.py, CaseClocks.recompute).
        self.after_evidence = after_evidence

    # -- intake ------------------------------------------------------------------------------------

    def _check_codes(self, intake: Intake) -> None:
        leafs = {c.code for c in self.knowledge.leaf_categories()}
        lists = {
            name: {i.code for i in self.knowledge.code_list(name)}
            for name in ("channels", "relations", "desired_outcomes")
        }
        platforms = {p.code for p in self.knowledge.platforms}
        checks = [
            ("categories", set(intake.categories) <= leafs),
            ("channel", intake.channel in lists["channels"]),
            ("relation", intake.relation in lists["relations"]),
            ("desired_outcomes", set(intake.desired_outcomes) <= lists["desired_outcomes"]),
            ("platforms", set(intake.platforms) <= platforms),
        ]
        for name, ok in checks:
            if not ok:
                raise ValidationFailed("unknown_code", field=name)
        if not (intake.agreed_to_terms and intake.agreed_to_sensitive_data):
            raise ValidationFailed("consent_required", field="consent")
        if intake.terms_version != self.policy.terms_version:
            raise ValidationFailed(
                "terms_outdated", field="consent", current_terms_version=self.policy.terms_version
            )

    def _urgency(self, c: Consultation) -> list[UrgencyFlag]:
        facts = {"minor": "victim_is_minor"} if c.victim_is_minor else {}
        text = "\n".join(x for x in (c.title, c.narrative, c.tried or "") if x)
        return self.triage.detect_urgency(text, categories=c.categories, facts=facts)

    async def intake_result(
        self,
        c: Consultation,
        *,
        uow: ConsultationUnitOfWork | None = None,
        flags: list[UrgencyFlag] | None = None,
    ) -> IntakeResult:
        """What an intake answers: the consultation, its urgency flags and the desks to call now.
        `uow`: the caller's open unit of work, so the desk lookup uses its connection, not a second one.
        `flags`: intake's own detection, not run twice (it was 30 % of intake's CPU)."""
        flags = self._urgency(c) if flags is None else flags
        directory = await self.desks.current(uow)  # one stamp query; the desks come from the cache
        return IntakeResult(
            consultation=c,
            urgency=flags,
            urgency_desks=self.desks.pick(directory, [d for f in flags for d in f.desk_codes]),
            emergency_desks=[v.desk for v in directory if v.desk.emergency],
        )

    async def open(self, actor: Actor, intake: Intake) -> IntakeResult:
        """A retry with the same Idempotency-Key is answered by the HTTP layer (infra/idempotency.py) from the
        key this use case's commit writes, so it is never a second consultation."""
        ensure_consulter(actor)
        owner = actor.require_user_id()
        self._check_codes(intake)
        now = self.clock.now()
        async with self.uow() as uow:
            repo: ConsultationRepository = uow.consultations
            if not await repo.lock_owner(owner):  # erased (or disabled) since the token was checked
                raise Unauthenticated("invalid_token")
            opened = await repo.created_times_since(owner, now - HOUR, self.policy.intake_per_hour)
            _refuse_past(self.policy.intake_per_hour, opened, now, "too_many_consultations")
            c = Consultation(
                id=uuid.uuid4(),
                owner_id=owner,
                channel=intake.channel,
                relation=intake.relation,
                title=intake.title,
                narrative=intake.narrative,
                categories=sorted(set(intake.categories)),
                desired_outcomes=sorted(set(intake.desired_outcomes)),
                platforms=sorted(set(intake.platforms)),
                platform_other=intake.platform_other or None,
                tried=intake.tried or None,
                victim_is_minor=intake.victim_is_minor,
                consent=Consent(intake.terms_version, now),
                created_at=now,
                updated_at=now,
                first_answer_due_at=due_at(
                    now,
                    self.policy.first_answer_business_days,
                    self.holidays,
                    closing=self.policy.office_closes,
                ),
            )
            flags = self._urgency(c)
            c.urgency_flags = [f.flag for f in flags]
            c.urgent = bool(flags)
            c.priority = Priority.urgent if flags else Priority.normal
            await repo.add(c)
            await record_intake(uow, owner, c.id, intake.terms_version, now)  # the ledger, same transaction
            await repo.add_transition(Transition(uuid.uuid4(), c.id, owner, None, Status.submitted, now))
            await uow.audit.record(
                actor, Action.consultation_created, "consultation", c.id, {"channel": c.channel}
            )
            result = await self.intake_result(c, uow=uow, flags=flags)  # in this transaction: no second round
            await uow.commit()
        return result

    # -- reading -----------------------------------------------------------------------------------

    async def load_visible(
        self,
        uow: ConsultationUnitOfWork,
        actor: Actor,
        consultation_id: uuid.UUID,
        visibility: Visibility | None = None,
    ) -> Consultation:
        """The case as the actor may see it: by the case routes' visibility, or a narrower one (the bundle's)."""
        ensure_may_read_consultations(actor)
        c = await uow.consultations.get(consultation_id, visibility or consultation_visibility(actor))
        if c is None:
            raise NotFound("consultation_not_found")
        if actor.is_staff:
            # Every staff read of a case is on the trail (ids only), in this unit of work: it commits with the
            # read or the change, and a use case that fails after this line leaves no record.
            await uow.audit.record(actor, "consultation.read", "consultation", c.id)
        return c

    async def get(self, actor: Actor, consultation_id: uuid.UUID) -> Consultation:
        async with self.uow() as uow:
            return await self.load_visible(uow, actor, consultation_id)

    async def page(
        self, actor: Actor, queue_filter: QueueFilter, *, after: Cursor | None, limit: int
    ) -> list[Consultation]:
        ensure_may_read_consultations(actor)
        if not queue_filters_allowed(actor) and (
            queue_filter.assignee_id or queue_filter.unassigned or queue_filter.overdue is not None
        ):
            raise ValidationFailed("filter_not_allowed")
        if queue_filter.category is not None:
            group = {c.code for c in self.knowledge.categories if c.parent == queue_filter.category}
            queue_filter = replace(queue_filter, category_codes=frozenset({queue_filter.category, *group}))
        async with self.uow() as uow:
            return await uow.consultations.page(
                consultation_visibility(actor),
                queue_filter,
                now=self.clock.now(),
                after=after,
                limit=limit,
                listing=True,
            )

    async def history(
        self,
        actor: Actor,
        consultation_id: uuid.UUID,
        *,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> tuple[Consultation, list[Transition]]:
        """The case and its status transitions, oldest first, a page at a time."""
        async with self.uow() as uow:
            c = await self.load_visible(uow, actor, consultation_id)
            return c, await uow.consultations.transitions(consultation_id, after=after, limit=limit)

    # -- changes -----------------------------------------------------------------------------------

    async def _save(
        self,
        uow: ConsultationUnitOfWork,
        c: Consultation,
        expected: int,
        actor: Actor,
        to: Status | None = None,
        reason: str | None = None,
    ) -> Consultation:
        now = self.clock.now()
        previous = c.status
        if to is not None and to is not previous:
            c.status = to
            await uow.consultations.add_transition(
                Transition(uuid.uuid4(), c.id, actor.require_user_id(), previous, to, now, reason)
            )
        c.updated_at = now
        c.version = expected + 1
        if not await uow.consultations.update(c, expected_version=expected):
            raise PreconditionFailed("stale_version")
        await uow.audit.record(
            actor,
            Action.consultation_changed,
            "consultation",
            c.id,
            {
                "version": c.version,
                "status": c.status.value,
                "from_status": previous.value if c.status is not previous else None,
                "reason": reason,
            },
        )
        return c

    @staticmethod
    def _check_version(c: Consultation, expected: int | None) -> int:
        if expected is not None and expected != c.version:
            raise PreconditionFailed("stale_version")
        return c.version

    async def update(
        self,
        actor: Actor,
        consultation_id: uuid.UUID,
        changes: dict[str, Any],
        *,
        expected_version: int | None,
    ) -> Consultation:
        staff_fields = {"categories", "priority", "urgent"}
        owner_fields = {"title", "tried", "platform_other"}
        allowed = owner_fields if actor.role is Role.consulter else staff_fields | {"title"}
        refused = set(changes) - allowed
        if refused:
            raise ValidationFailed("field_not_allowed", fields=sorted(refused))
        async with self.uow() as uow:
            c = await self.load_visible(uow, actor, consultation_id)
            expected = self._check_version(c, expected_version)
            if c.status not in OPEN_STATUSES:
                raise InvalidState("consultation_not_open")
            if actor.is_staff:
                ensure_may_work(actor, c)
            if "categories" in changes:
                codes = list(changes["categories"] or [])
                if not set(codes) <= {x.code for x in self.knowledge.leaf_categories()}:
                    raise ValidationFailed("unknown_code", field="categories")
                c.categories = sorted(set(codes))
            if "priority" in changes and changes["priority"] is not None:
                c.priority = Priority(changes["priority"])
            if "urgent" in changes and changes["urgent"] is not None:
                c.urgent = bool(changes["urgent"])
            for name in ("title", "tried", "platform_other"):
                if name in changes:
                    value = changes[name]
                    if name == "title" and not value:
                        raise ValidationFailed("title_required", field="title")
                    setattr(c, name, value or None)
            c = await self._save(uow, c, expected, actor)
            await uow.commit()
            return c

    async def assign(
        self,
        actor: Actor,
        consultation_id: uuid.UUID,
        assignee_id: uuid.UUID,
        *,
        expected_version: int | None,
    ) -> Consultation:
        ensure_may_assign(actor, assignee_id)
        async with self.uow() as uow:
            c = await self.load_visible(uow, actor, consultation_id)
            expected = self._check_version(c, expected_version)
            if c.status not in OPEN_STATUSES:
                raise InvalidState("consultation_not_open")
            ensure_may_take(actor, c)
            role = await uow.consultations.staff_role(assignee_id)
            if role not in ASSIGNEES:
                raise ValidationFailed("assignee_not_caseworker", field="assignee_id")
            c.assignee_id = assignee_id
            to = Status.in_progress if c.status is Status.submitted else None
            c = await self._save(uow, c, expected, actor, to, reason="assigned")
            await uow.commit()
            return c

    async def close(
        self, actor: Actor, consultation_id: uuid.UUID, *, expected_version: int | None
    ) -> Consultation:
        async with self.uow() as uow:
            c = await self.load_visible(uow, actor, consultation_id)
            expected = self._check_version(c, expected_version)
            ensure_may_work(actor, c)
            if c.status not in (Status.in_progress, Status.answered):
                raise InvalidState("invalid_transition", from_status=c.status.value, to_status="closed")
            c.closed_at = self.clock.now()
            c = await self._save(uow, c, expected, actor, Status.closed)
            await uow.commit()
            return c

    async def reopen(self, actor: Actor, consultation_id: uuid.UUID) -> Consultation:
        async with self.uow() as uow:
            c = await self.load_visible(uow, actor, consultation_id)
            if actor.is_staff:
                ensure_may_work(actor, c)
            if c.status is not Status.closed:
                raise InvalidState("invalid_transition", from_status=c.status.value, to_status="in_progress")
            if c.closed_at is None or self.clock.now() - c.closed_at > self.policy.reopen_window:
                raise InvalidState("reopen_window_passed")
            c.closed_at = None
            c = await self._save(uow, c, c.version, actor, Status.in_progress, reason="reopened")
            await uow.commit()
            return c

    async def withdraw(self, actor: Actor, consultation_id: uuid.UUID) -> Consultation:
        ensure_consulter(actor)
        async with self.uow() as uow:
            c = await self.load_visible(uow, actor, consultation_id)
            if c.status not in OPEN_STATUSES:
                raise InvalidState("invalid_transition", from_status=c.status.value, to_status="withdrawn")
            c.closed_at = self.clock.now()
            c = await self._save(uow, c, c.version, actor, Status.withdrawn, reason="withdrawn")
            await uow.commit()
            return c

    # -- messages ----------------------------------------------------------------------------------

    async def messages(
        self,
        actor: Actor,
        consultation_id: uuid.UUID,
        *,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        """The thread as the actor may see it, oldest first, a page at a time. Reading changes nothing: the
        consulter marks answers read explicitly (`mark_read`), so a prefetch, a retry or a crawler never clears
        an unread count."""
        async with self.uow() as uow:
            c = await self.load_visible(uow, actor, consultation_id)
            return await uow.consultations.messages(
                c.id, self._visible_kinds(actor), message_visibility(actor), after=after, limit=limit
            )

    async def get_message(self, actor: Actor, consultation_id: uuid.UUID, message_id: uuid.UUID) -> Message:
        async with self.uow() as uow:
            c = await self.load_visible(uow, actor, consultation_id)
            message = await uow.consultations.get_message(
                c.id, message_id, self._visible_kinds(actor), message_visibility(actor)
            )
        if message is None:
            raise NotFound("message_not_found")
        return message

    @staticmethod
    def _visible_kinds(actor: Actor) -> list[MessageKind]:
        if actor.role is Role.consulter:
            return [MessageKind.consulter, MessageKind.answer]
        return list(MessageKind)

    async def mark_read(self, actor: Actor, consultation_id: uuid.UUID, up_to: uuid.UUID) -> int:
        """The owner has read the thread up to this message (inclusive); returns the answers still unread.
        The mark never moves back: marking an older message read leaves later reads in place."""
        ensure_consulter(actor)
        async with self.uow() as uow:
            c = await self.load_visible(uow, actor, consultation_id)
            thread = await uow.consultations.messages(
                c.id, [MessageKind.consulter, MessageKind.answer], message_visibility(actor)
            )
            seen = next((m for m in thread if m.id == up_to), None)
            if seen is None:
                raise NotFound("message_not_found")
            read_at = seen.created_at
            if c.consulter_read_at is not None and c.consulter_read_at > read_at:
                read_at = c.consulter_read_at
            else:
                await uow.consultations.mark_read(c.id, read_at)
                await uow.commit()
            return sum(1 for m in thread if m.kind is MessageKind.answer and m.created_at > read_at)

    async def post_message(
        self, actor: Actor, consultation_id: uuid.UUID, body: str, kind: MessageKind | None
    ) -> PostedMessage:
        """A consulter's message, or a staff member's internal note. Answers are not posted here: they go
        through drafts (domain/answers.py), so that review rules apply before anything reaches a consulter.

        Urgency is not decided at intake only: a consulter's follow-up that reveals danger (a threat,
        suicidal intent, a new sexual image, someone at the door) raises the case's urgency, alerts the
        assignee (the supervisors when unassigned) through the outbox in the same transaction, and the
        consulter is answered with the emergency desks, as at intake."""
        if not body.strip():
            raise ValidationFailed("empty_message", field="body")
        now = self.clock.now()
        async with self.uow() as uow:
            c = await self.load_visible(uow, actor, consultation_id)
            if actor.role is Role.consulter:
                if kind not in (None, MessageKind.consulter):
                    raise ValidationFailed("kind_not_allowed", field="kind")
                kind = MessageKind.consulter
                if c.status not in OPEN_STATUSES:
                    raise InvalidState("consultation_not_open")
            else:
                ensure_may_work(actor, c)
                if kind is MessageKind.answer:
                    raise ValidationFailed("answers_go_through_drafts", field="kind")
                if kind is not MessageKind.note:
                    raise ValidationFailed("kind_required", field="kind")
            if kind is MessageKind.consulter:
                await self._check_message_rate(uow, c, now)
            message = Message(uuid.uuid4(), c.id, actor.require_user_id(), kind, body, now)
            await uow.consultations.add_message(message)
            await uow.audit.record(
                actor,
                Action.message_posted,
                "message",
                message.id,
                {"kind": kind.value},
                consultation_id=c.id,
            )
            flags: list[UrgencyFlag] = []
            if kind is MessageKind.consulter:
                facts = {"minor": "victim_is_minor"} if c.victim_is_minor else {}
                flags = self.triage.detect_urgency(body, categories=(), facts=facts)
                if flags:
                    c.urgency_flags = sorted({*c.urgency_flags, *(f.flag for f in flags)})
                    c.urgent = True
                    c.priority = Priority.urgent
                if any(f.flag in DANGER_FLAGS for f in flags):
                    await self._alert_staff(uow, c, message, [f.flag for f in flags])
                else:
                    flags = []  # only `minor`, known since intake: recorded, nothing new to show
                to = Status.in_progress if c.status is Status.answered else None
                c = await self._save(uow, c, c.version, actor, to, reason=kind.value)
            await uow.commit()
        if not flags:
            return PostedMessage(message, c)
        return PostedMessage(
            message,
            c,
            flags,
            await self.desks.resolve([d for f in flags for d in f.desk_codes]),
            await self.desks.emergency(),
        )

    async def _check_message_rate(self, uow: ConsultationUnitOfWork, c: Consultation, now: datetime) -> None:
        """A consulter posts at most `consulter_messages_per_hour` messages to one consultation in any hour."""
        recent = await uow.consultations.message_times_since(c.id, MessageKind.consulter, now - HOUR)
        _refuse_past(self.policy.consulter_messages_per_hour, recent, now, "too_many_messages")

    async def _alert_staff(
        self, uow: ConsultationUnitOfWork, c: Consultation, message: Message, flags: list[str]
    ) -> None:
        """One outbox row per recipient, deduplicated per message. Ids and flag names only: a mail never
        carries what the consulter wrote."""
        recipients = [c.assignee_id] if c.assignee_id else await uow.consultations.supervisor_ids()
        for user_id in recipients:
            await uow.outbox.put(
                "mail.urgent_followup",
                {"user_id": str(user_id), "consultation_id": str(c.id), "flags": ",".join(sorted(flags))},
                dedupe_key=f"urgent-followup:{message.id}:{user_id}",
            )

    async def publish_answer(
        self, uow: ConsultationUnitOfWork, actor: Actor, c: Consultation, body: str
    ) -> Message:
        """Inside the caller's unit of work: the answer message, its notices and the status change commit
        together, so a notice is never lost nor sent for an answer that was rolled back."""
        if c.status not in (Status.in_progress, Status.answered):
            raise InvalidState("invalid_transition", from_status=c.status.value, to_status="answered")
        now = self.clock.now()
        c.first_answered_at = c.first_answered_at or now
        message = Message(uuid.uuid4(), c.id, actor.require_user_id(), MessageKind.answer, body, now)
        await uow.consultations.add_message(message)
        await uow.audit.record(
            actor, Action.message_posted, "message", message.id, {"kind": "answer"}, consultation_id=c.id
        )
        await uow.outbox.put(
            "mail.answer_published",
            {"user_id": str(c.owner_id), "consultation_id": str(c.id)},
            dedupe_key=f"answer:{message.id}",
        )
        await uow.outbox.put(
            "line.answer_published",
            {"user_id": str(c.owner_id), "consultation_id": str(c.id)},
            dedupe_key=f"line-answer:{message.id}",
        )
        await self._save(uow, c, c.version, actor, Status.answered, reason="answer")
        return message

    # -- evidence ----------------------------------------------------------------------------------

    async def add_evidence(self, actor: Actor, consultation_id: uuid.UUID, item: Evidence) -> Evidence:
        hashes = (
            check_image_hashes(item.image_hashes, min_quality=self.policy.pdq_min_quality)
            if item.image_hashes is not None
            else None
        )
        async with self.uow() as uow:
            c = await self.load_visible(uow, actor, consultation_id)
            if actor.is_staff:
                ensure_may_work(actor, c)
            if c.status not in OPEN_STATUSES:
                raise InvalidState("consultation_not_open")
            if item.platform is not None and self.knowledge.platform(item.platform) is None:
                raise ValidationFailed("unknown_code", field="platform")
            usage = await uow.consultations.evidence_usage(c.id, c.owner_id)
            if usage.items >= self.policy.evidence_items_per_consultation:
                raise Conflict("evidence_limit_reached", limit=self.policy.evidence_items_per_consultation)
            item = replace(
                item,
                id=uuid.uuid4(),
                consultation_id=c.id,
                created_by=actor.require_user_id(),
                created_at=self.clock.now(),
                url=check_evidence_url(item.url) if item.url else None,
                poster_account=item.poster_account or None,
                excerpt=item.excerpt or None,
                notes=item.notes or None,
                image_hashes=hashes,
                file=None,
                upload_slot=None,
            )
            await uow.consultations.add_evidence(item)
            await uow.audit.record(
                actor,
                Action.evidence_created,
                "evidence",
                item.id,
                {"gaps": len(item.missing())},
                consultation_id=c.id,
            )
            if self.after_evidence is not None:
                await self.after_evidence(uow, c)
            await uow.commit()
            return item

    async def evidence(
        self,
        actor: Actor,
        consultation_id: uuid.UUID,
        *,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> list[Evidence]:
        """Seeing the list is a custody event (committed when the unit of work ends without error)."""
        async with self.uow() as uow:
            c = await self.load_visible(uow, actor, consultation_id)
            items: list[Evidence] = await uow.consultations.evidence(
                c.id, evidence_visibility(actor), after=after, limit=limit
            )
            await uow.audit.record(
                actor,
                Action.evidence_viewed,
                "evidence_list",
                c.id,
                {"items": len(items)},
                consultation_id=c.id,
            )
            return items

    async def _visible_item(
        self,
        uow: ConsultationUnitOfWork,
        actor: Actor,
        consultation_id: uuid.UUID,
        evidence_id: uuid.UUID,
    ) -> tuple[Consultation, Evidence]:
        c = await self.load_visible(uow, actor, consultation_id)
        item = await uow.consultations.get_evidence(c.id, evidence_id, evidence_visibility(actor))
        if item is None:
            raise NotFound("evidence_not_found")
        return c, item

    async def get_evidence(
        self, actor: Actor, consultation_id: uuid.UUID, evidence_id: uuid.UUID
    ) -> Evidence:
        async with self.uow() as uow:
            c, item = await self._visible_item(uow, actor, consultation_id, evidence_id)
            await uow.audit.record(actor, Action.evidence_viewed, "evidence", item.id, consultation_id=c.id)
        return item

    def _refuse_images(self, c: Consultation, item: Evidence) -> None:
        """In a hash-only case no picture is taken: never for a minor, for an adult only through a slot a
        supervisor opened for this one item. The refusal says what to do instead, with desks from the
        directory (codes; GET /v1/desks/{code} has their contact details and sources)."""
        if c.victim_is_minor:
            raise Forbidden(
                "minor_images_never_accepted", MINOR_IMAGES_NEVER_ACCEPTED, desks=list(HASH_ONLY_DESKS_MINOR)
            )
        if item.upload_slot is None:
            raise Conflict("images_not_accepted", IMAGES_NOT_ACCEPTED, desks=list(HASH_ONLY_DESKS_ADULT))

    async def attach_file(
        self, actor: Actor, consultation_id: uuid.UUID, evidence_id: uuid.UUID, data: bytes
    ) -> Evidence:
        async with self.uow() as uow:
            c, item = await self._visible_item(uow, actor, consultation_id, evidence_id)
            if actor.is_staff:
                ensure_may_work(actor, c)
            if item.file is not None:
                raise Conflict("file_already_attached")
            if c.status not in OPEN_STATUSES:
                raise InvalidState("consultation_not_open")
            hash_only = is_hash_only(c)
            if hash_only:
                self._refuse_images(c, item)
            usage = await uow.consultations.evidence_usage(c.id, c.owner_id)
            if usage.consultation_bytes + len(data) > self.policy.evidence_bytes_per_consultation:
                raise QuotaExceeded("consultation_storage_full")
            if usage.consulter_bytes + len(data) > self.policy.evidence_bytes_per_consulter:
                raise QuotaExceeded("consulter_storage_full")
            # Only now, with access, state and room checked, are the uploaded bytes looked at.
            case_key = await uow.case_keys.for_consultation(c.id)
            file = replace(await self.files.store(data, case_key), sealed=hash_only)
            await uow.consultations.attach_file(item.id, file)
            item.file = file
            if item.image_hashes is None and self.hasher is not None:
                # The server hashes what it received (the original), so an uploaded picture links with
                # device-hashed ones without anyone looking at it.
                hashes = await self.hasher.hashes(data)
                if hashes is not None and hashes.pdq_quality >= self.policy.pdq_min_quality:
                    await uow.consultations.set_image_hashes(item.id, hashes)
                    item.image_hashes = hashes
            await uow.audit.record(
                actor,
                Action.evidence_file_received,
                "evidence",
                item.id,
                {
                    "sha256_hmac": file_digest(case_key, file.sha256),
                    "copy_sha256_hmac": file_digest(case_key, file.copy_sha256),
                    "size": file.size,
                },
                consultation_id=c.id,
            )
            await uow.commit()
            return item

    async def correct_evidence(
        self,
        actor: Actor,
        consultation_id: uuid.UUID,
        evidence_id: uuid.UUID,
        changes: Mapping[str, Any],
        *,
        expected_version: int | None,
    ) -> Evidence:
        """Correct what was recorded about an item (a wrong URL, a posting time made exact), by its consulter or
        the staff working the case, against the version they saw. The correction is a link on the chain of
        custody naming the fields changed and the SHA-256 of their earlier values, so the earlier record can be
        proved without the chain holding what it said. Files and image hashes are not corrected: they are
        what was received."""
        unknown = set(changes) - CORRECTABLE_EVIDENCE_FIELDS
        if unknown:
            raise ValidationFailed("field_not_editable", field=",".join(sorted(unknown)))
        async with self.uow() as uow:
            c, item = await self._visible_item(uow, actor, consultation_id, evidence_id)
            if actor.is_staff:
                ensure_may_work(actor, c)
            if c.status not in OPEN_STATUSES:
                raise InvalidState("consultation_not_open")
            if expected_version is not None and expected_version != item.version:
                raise PreconditionFailed("stale_version")
            new = dict(changes)
            if new.get("platform") is not None and self.knowledge.platform(new["platform"]) is None:
                raise ValidationFailed("unknown_code", field="platform")
            if new.get("url"):
                new["url"] = check_evidence_url(new["url"])
            for name in ("url", "poster_account", "excerpt", "notes"):
                if name in new:
                    new[name] = new[name] or None
            changed = sorted(k for k, v in new.items() if getattr(item, k) != v)
            if not changed:
                return item
            before = {k: _canonical_value(getattr(item, k)) for k in changed}
            corrected = replace(item, **{k: new[k] for k in changed}, version=item.version + 1)
            if not await uow.consultations.update_evidence(corrected, expected_version=item.version):
                raise PreconditionFailed("stale_version")
            await uow.audit.record(
                actor,
                Action.evidence_corrected,
                "evidence",
                item.id,
                {"fields": ",".join(changed), "before_hmac_sha256": _digest(before, self.policy.digest_key)},
                consultation_id=c.id,
            )
            if self.after_evidence is not None:
                await self.after_evidence(uow, c)
            await uow.commit()
        return corrected

    async def delete_evidence(self, actor: Actor, consultation_id: uuid.UUID, evidence_id: uuid.UUID) -> None:
        """The consulter removes an item of their own and its stored files (copy and sealed original). The chain
        keeps the deletion with the files' hashes, so what existed can still be shown. An item a request names
        is refused (409 evidence_in_use): unlink it from the request first."""
        ensure_consulter(actor)
        async with self.uow() as uow:
            c, item = await self._visible_item(uow, actor, consultation_id, evidence_id)
            if await uow.consultations.evidence_in_requests(item.id):
                raise Conflict("evidence_in_use")
            await uow.consultations.delete_evidence(item.id)
            case_key = await uow.case_keys.for_consultation(c.id) if item.file else None
            await uow.audit.record(
                actor,
                Action.evidence_deleted,
                "evidence",
                item.id,
                {
                    "sha256_hmac": file_digest(case_key, item.file.sha256)
                    if case_key and item.file
                    else None,
                    "copy_sha256_hmac": (
                        file_digest(case_key, item.file.copy_sha256) if case_key and item.file else None
                    ),
                },
                consultation_id=c.id,
            )
            if self.after_evidence is not None:
                await self.after_evidence(uow, c)
            await uow.commit()
        # Only after the commit: a crash here leaves unreferenced bytes in the store, never an item whose file
        # is gone.
        if item.file is not None:
            for key in (item.file.storage_key, item.file.original_key):
                if key:
                    await self.files.delete(key)

    async def open_upload_slot(
        self, actor: Actor, consultation_id: uuid.UUID, evidence_id: uuid.UUID, reason: str
    ) -> Evidence:
        """A supervisor lets one file be uploaded to one evidence item of a hash-only case about an adult,
        when the person insists; the reason is recorded with who and when, and on the audit trail."""
        ensure_supervisor(actor)  # by role, before anything is looked up
        if not reason.strip():
            raise ValidationFailed("reason_required", field="reason")
        async with self.uow() as uow:
            c, item = await self._visible_item(uow, actor, consultation_id, evidence_id)
            if c.status not in OPEN_STATUSES:
                raise InvalidState("consultation_not_open")
            if not is_hash_only(c):
                raise Conflict("upload_slot_not_needed")
            if c.victim_is_minor:
                raise Forbidden(
                    "minor_images_never_accepted",
                    MINOR_IMAGES_NEVER_ACCEPTED,
                    desks=list(HASH_ONLY_DESKS_MINOR),
                )
            if item.file is not None:
                raise Conflict("file_already_attached")
            slot = UploadSlot(actor.require_user_id(), self.clock.now(), reason)
            if item.upload_slot is not None or not await uow.consultations.open_upload_slot(item.id, slot):
                raise Conflict("upload_slot_already_open")
            await uow.audit.record(
                actor, Action.evidence_upload_slot_opened, "evidence", item.id, consultation_id=c.id
            )
            await uow.commit()
            item.upload_slot = slot
            return item

    async def read_file(
        self, actor: Actor, consultation_id: uuid.UUID, evidence_id: uuid.UUID
    ) -> tuple[Evidence, AsyncIterator[bytes]]:
        """The cleaned copy, never the original. A sealed file (a hash-only case) only for the assignee."""
        async with self.uow() as uow:
            c, item = await self._visible_item(uow, actor, consultation_id, evidence_id)
            if item.file is None:
                raise NotFound("file_not_found")
            # Sealed when uploaded through a slot, and also when the case became an intimate-image or minor
            # case after the upload (staff reclassified it): from then on only the assignee opens pictures.
            sealed = item.file.sealed or is_hash_only(c)
            if sealed and (c.assignee_id is None or actor.user_id != c.assignee_id):
                raise NotFound("file_not_found")
            case_key = await uow.case_keys.for_consultation(c.id)
            data = await self.files.open(item.file.storage_key, case_key)
            await uow.audit.record(
                actor,
                Action.evidence_downloaded,
                "evidence",
                item.id,
                {"sha256_hmac": file_digest(case_key, item.file.copy_sha256)},
                consultation_id=c.id,
            )
            await uow.commit()
        return item, data

    async def export_original(
        self, actor: Actor, consultation_id: uuid.UUID, evidence_id: uuid.UUID
    ) -> tuple[Evidence, bytes]:
        """The original exactly as received: the one way its bytes leave storage besides the evidence bundle
        (issue 16 §4). No route serves it by itself. The consulter who owns the case and the assigned staff
        member may export it; everyone else, and a file uploaded before originals were kept, is 404. The
        export is on the chain of custody; the caller checks the bytes against `file.sha256` if it wants to."""
        async with self.uow() as uow:
            c, item = await self._visible_item(uow, actor, consultation_id, evidence_id)
            allowed = actor.user_id is not None and actor.user_id in (c.owner_id, c.assignee_id)
            if not allowed or item.file is None or item.file.original_key is None:
                raise NotFound("file_not_found")
            case_key = await uow.case_keys.for_consultation(c.id)
            data = await self._stored_bytes(item.file.original_key, case_key)
            await uow.audit.record(
                actor,
                Action.evidence_original_exported,
                "evidence",
                item.id,
                {"sha256_hmac": file_digest(case_key, item.file.sha256)},
                consultation_id=c.id,
            )
            await uow.commit()
        return item, data

    async def similar(
        self, actor: Actor, consultation_id: uuid.UUID, evidence_id: uuid.UUID
    ) -> list[SimilarItem]:
        """Evidence items in any consultation whose PDQ hash is within the match distance of this one: the
        same picture spreading, seen as one pattern by staff, without anyone opening a picture. Only ids and
        distances come back; a consulter never sees this (403), and the item must be visible to the caller."""
        ensure_caseworker(actor)
        async with self.uow() as uow:
            _, item = await self._visible_item(uow, actor, consultation_id, evidence_id)
            if item.image_hashes is None:
                return []
            mine = int(item.image_hashes.pdq, 16)
            limit = self.policy.pdq_match_distance
            found = []
            for other_id, other_case, pdq, created_at in await uow.consultations.pdq_hashes():
                if other_id == item.id:
                    continue
                distance = (mine ^ int(pdq, 16)).bit_count()
                if distance <= limit:
                    found.append(SimilarItem(other_id, other_case, distance, created_at))
        return sorted(found, key=lambda s: (s.distance, s.created_at, str(s.evidence_id)))

    # -- the evidence bundle -------------------------------------------------------------------------

    async def evidence_bundle(
        self, actor: Actor, consultation_id: uuid.UUID, *, originals: bool = False
    ) -> EvidenceBundle:
        """Everything a lawyer, the police or a court needs from this case's evidence, for the consulter and
        for the staff member the case is assigned to; anyone else (a supervisor included) gets 404. Only the
        consulter may ask for the originals. The export is itself a link on the chain, committed before the
        bundle is written, so the bundle carries the head that includes its own export."""
        visibility = evidence_bundle_visibility(actor)
        if isinstance(visibility, Nothing):
            raise NotFound("consultation_not_found")
        async with self.uow() as uow:
            c = await self.load_visible(uow, actor, consultation_id, visibility)
            ensure_may_ask_for_originals(actor, originals)
            stored: list[Evidence] = await uow.consultations.evidence(c.id, visibility)
            key = await uow.case_keys.for_consultation(c.id) if any(e.file for e in stored) else None
            items = []
            for number, e in enumerate(stored, 1):
                # A sealed picture (an intimate-image or minor case) leaves the service for no one but the
                # assigned consultant, in a bundle as everywhere else: others get its hashes, not its bytes.
                sealed = e.file is not None and (e.file.sealed or is_hash_only(c))
                shown = e.file is not None and (not sealed or actor.user_id == c.assignee_id)
                items.append(
                    BundleItem(
                        number=number,
                        evidence=e,
                        copy=await self._stored_bytes(e.file.storage_key, key)
                        if shown and e.file and key
                        else None,
                        copy_sha256=e.file.copy_sha256 if e.file else None,
                        original_sha256=e.file.sha256 if e.file else None,
                        original=await self._original(e, key) if originals and shown and key else None,
                    )
                )
            await uow.audit.record(
                actor,
                Action.evidence_exported,
                "evidence_bundle",
                c.id,
                {
                    "items": len(items),
                    "files": sum(1 for i in items if i.copy is not None),
                    "originals": sum(1 for i in items if i.original is not None),
                },
                consultation_id=c.id,
            )
            links = await uow.custody.links(c.id)
            head = await uow.custody.head(c.id)
            stamps = await uow.custody.stamps(c.id)
            assert head is not None  # the export's own link made it
            await uow.commit()
        return EvidenceBundle(
            consultation_id=c.id,
            exported_at=self.clock.now(),
            exported_by_role=actor.role.value if actor.role else "",
            exported_by=actor.require_user_id(),
            originals_requested=originals,
            items=items,
            links=links,
            head=head,
            stamp=stamps[-1] if stamps else None,
        )

    async def _original(self, e: Evidence, key: CaseKey) -> Original | None:
        """The sealed original of an item for the bundle, when one was kept (files uploaded before originals
        were kept have none)."""
        if e.file is None or e.file.original_key is None or e.file.sha256 is None:
            return None
        data = await self._stored_bytes(e.file.original_key, key)
        return Original(data=data, content_type=e.file.content_type, sha256=e.file.sha256)

    async def _stored_bytes(self, storage_key: str, key: CaseKey) -> bytes:
        return b"".join([chunk async for chunk in await self.files.open(storage_key, key)])
