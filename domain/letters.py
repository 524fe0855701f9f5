"""Letters a person sends themselves (issue 15 §3): the standard removal letter per right and the
sender-information disclosure request, built from evidence items of one consultation, with the parts only the
person can write left as guided fields. Every change is a new immutable version; the legal-advisor review
rules of answers (domain/answers.py) decide which letters need the advisor's approval before they are final.

Letter content is sensitive: it is never logged and the audit trail records ids only."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, Protocol

from domain.actors import Actor, Role
from domain.answers import AnswerService
from domain.consultations import OPEN_STATUSES, Consultation, Cursor, Evidence
from domain.errors import InvalidState, NotFound, PreconditionFailed, ValidationFailed
from domain.policy import (
    LEGAL_ADVISORS,
    LETTER_REVIEWERS,
    Visibility,
    ensure_legal_advisor,
    ensure_may_work,
    ensure_owner,
    ensure_role,
    evidence_visibility,
    letter_visibility,
    may,
    review_visibility,
)
from domain.ports import LetterUnitOfWork, UnitOfWorkFactory

JST = timezone(timedelta(hours=9), "JST")


class LetterKind(enum.StrEnum):
    removal_defamation_privacy = "removal_defamation_privacy"
    removal_copyright = "removal_copyright"
    removal_trademark = "removal_trademark"
    removal_intimate_image = "removal_intimate_image"
    disclosure = "disclosure"


class LetterState(enum.StrEnum):
    draft = "draft"
    awaiting_review = "awaiting_review"
    returned = "returned"
    approved = "approved"
    final = "final"


EDITABLE = frozenset({LetterState.draft, LetterState.returned, LetterState.approved})
FIELD_KINDS = frozenset({"evidence", "choice", "guided", "text"})


# -- the forms, as data ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FormField:
    code: str
    kind: str
    label_ja: str
    help_ja: str
    required: bool = False
    max_length: int | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LetterForm:
    kind: LetterKind
    title_ja: str
    subtitle_ja: str
    title_en: str
    source_url: str
    form_url: str
    checked: date
    opening_ja: str
    declaration_ja: str
    fields: tuple[FormField, ...]
    review_as: Mapping[str, tuple[str, ...]]

    def field(self, code: str) -> FormField | None:
        return next((f for f in self.fields if f.code == code), None)


@dataclass(frozen=True, slots=True)
class LetterNotice:
    """What the consulter is told before downloading (plain Japanese)."""

    forwarding_ja: str
    address_ja: str
    sender_omitted_ja: str
    draft_ja: str


@dataclass(frozen=True, slots=True)
class WebFormField:
    code: str
    label_ja: str
    source: str  # urls | posted_at | excerpt | right | reason | full | fixed
    max_length: int
    limit: str  # service | centre
    fixed_ja: str | None = None


@dataclass(frozen=True, slots=True)
class WebForm:
    service: str
    form_name_ja: str
    url: str
    source_url: str
    checked: date
    fields: tuple[WebFormField, ...]


@dataclass(frozen=True, slots=True)
class LetterCatalogue:
    version: str
    forms: tuple[LetterForm, ...]
    notice: LetterNotice
    web_forms: tuple[WebForm, ...]

    def form(self, kind: LetterKind) -> LetterForm:
        return next(f for f in self.forms if f.kind is kind)

    def web_form(self, service: str) -> WebForm | None:
        return next((w for w in self.web_forms if w.service == service), None)


WEB_SOURCES = frozenset({"urls", "posted_at", "excerpt", "right", "reason", "full", "fixed"})
REVIEW_FACTS = frozenset({"categories", "desired_outcomes", "urgency_flags"})


def _date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def catalogue_from_raw(
    forms_raw: Mapping[str, Any], web_raw: Mapping[str, Any], known_services: set[str]
) -> LetterCatalogue:
    """Validated on load: every kind once, known field kinds, choices only on choice fields, guided fields
    with help text, web forms only for services of the platform reference data and with a limit each."""
    forms = []
    for item in forms_raw["forms"]:
        fields = []
        for f in item["fields"]:
            kind = str(f["kind"])
            if kind not in FIELD_KINDS or not str(f.get("help_ja", "")).strip():
                raise ValueError(f"letter form {item['kind']}: field {f.get('code')} kind or help missing")
            if bool(f.get("choices")) != (kind == "choice"):
                raise ValueError(f"letter form {item['kind']}: choices only on choice fields ({f['code']})")
            fields.append(
                FormField(
                    str(f["code"]),
                    kind,
                    str(f["label_ja"]),
                    str(f["help_ja"]).strip(),
                    bool(f.get("required", False)),
                    int(f["max_length"]) if f.get("max_length") is not None else None,
                    tuple(str(c) for c in f.get("choices", [])),
                )
            )
        codes = [f.code for f in fields]
        if len(set(codes)) != len(codes) or not {"place", "information", "right", "reason"} <= set(codes):
            raise ValueError(f"letter form {item['kind']}: duplicate or missing standard fields")
        review_as = {k: tuple(v) for k, v in (item.get("review_as") or {}).items()}
        if set(review_as) - REVIEW_FACTS:
            raise ValueError(f"letter form {item['kind']}: unknown review facts")
        forms.append(
            LetterForm(
                LetterKind(item["kind"]),
                str(item["title_ja"]),
                str(item["subtitle_ja"]),
                str(item["title_en"]),
                str(item["source_url"]),
                str(item["form_url"]),
                _date(item["checked"]),
                "".join(str(item["opening_ja"]).split()),
                "".join(str(item["declaration_ja"]).split()),
                tuple(fields),
                review_as,
            )
        )
    if sorted(f.kind for f in forms) != sorted(LetterKind):
        raise ValueError("letter forms: every kind exactly once")
    n = forms_raw["notice"]
    notice = LetterNotice(
        *(
            "".join(str(n[k]).split())
            for k in ("forwarding_ja", "address_ja", "sender_omitted_ja", "draft_ja")
        )
    )
    web_forms = []
    for w in web_raw["services"]:
        if w["service"] not in known_services:
            raise ValueError(f"web form for unknown service {w['service']}")
        wf = []
        for f in w["fields"]:
            if (
                f["source"] not in WEB_SOURCES
                or f["limit"] not in ("service", "centre")
                or int(f["max_length"]) < 1
            ):
                raise ValueError(f"web form {w['service']}: bad field {f.get('code')}")
            if (f["source"] == "fixed") != bool(f.get("fixed_ja")):
                raise ValueError(f"web form {w['service']}: fixed text only for fixed fields")
            wf.append(
                WebFormField(
                    str(f["code"]),
                    str(f["label_ja"]),
                    str(f["source"]),
                    int(f["max_length"]),
                    str(f["limit"]),
                    f.get("fixed_ja"),
                )
            )
        web_forms.append(
            WebForm(
                str(w["service"]),
                str(w["form_name_ja"]),
                str(w["url"]),
                str(w["source_url"]),
                _date(w["checked"]),
                tuple(wf),
            )
        )
    return LetterCatalogue(str(forms_raw["version"]), tuple(forms), notice, tuple(web_forms))


# -- letters ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LetterItem:
    """An evidence item as the letter quotes it, copied into the version so the letter never changes under
    the person's feet."""

    evidence_id: uuid.UUID
    url: str | None
    posted_at: datetime | None
    excerpt: str | None
    platform: str | None

    @property
    def posted_at_jst(self) -> str | None:
        """The posting time as the letter prints it (and as LetterItemOut shows it)."""
        if self.posted_at is None:
            return None
        return self.posted_at.astimezone(JST).strftime("%Y年%m月%d日 %H時%M分") + "(日本時間)"


@dataclass(frozen=True, slots=True)
class Sender:
    """The person's own details, each only if they choose to give it."""

    name: str | None = None
    address: str | None = None
    contact: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.name or self.address or self.contact)


@dataclass(frozen=True, slots=True)
class LetterContent:
    recipient: str
    items: tuple[LetterItem, ...]
    choices: Mapping[str, tuple[str, ...]]
    texts: Mapping[str, str]
    sender: Sender


@dataclass(frozen=True, slots=True)
class LetterVersion:
    id: uuid.UUID
    letter_id: uuid.UUID
    number: int
    content: LetterContent
    author_id: uuid.UUID
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LetterReview:
    id: uuid.UUID
    letter_id: uuid.UUID
    version_number: int
    reviewer_id: uuid.UUID
    reviewer_role: str
    decision: str  # approved | returned
    advice: str | None
    created_at: datetime


@dataclass(slots=True)
class Letter:
    id: uuid.UUID
    consultation_id: uuid.UUID
    kind: LetterKind
    author_id: uuid.UUID
    state: LetterState
    review_reasons: list[str]
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None = None
    finalised_at: datetime | None = None
    version: int = 1
    versions: list[LetterVersion] = field(default_factory=list)
    reviews: list[LetterReview] = field(default_factory=list)

    @property
    def latest(self) -> LetterVersion:
        return self.versions[-1]

    def advisor_approved_latest(self) -> bool:
        return any(
            r.decision == "approved"
            and r.reviewer_role == Role.legal_advisor.value
            and r.version_number == self.latest.number
            for r in self.reviews
        )


@dataclass(frozen=True, slots=True)
class Draft:
    """What the person submits for one version."""

    recipient: str
    evidence_ids: tuple[uuid.UUID, ...]
    choices: Mapping[str, Sequence[str]]
    texts: Mapping[str, str]
    sender: Sender


def missing_fields(form: LetterForm, content: LetterContent) -> list[str]:
    """The required fields still empty: these block finalising (never creating or saving a draft)."""
    missing = []
    for f in form.fields:
        if not f.required:
            continue
        if f.kind == "evidence":
            continue
        if f.kind == "choice" and not content.choices.get(f.code):
            missing.append(f.code)
        if f.kind in ("guided", "text") and not (content.texts.get(f.code) or "").strip():
            missing.append(f.code)
    if not content.recipient.strip():
        missing.append("recipient")
    return missing


# -- the plain-text version for web forms ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FormText:
    code: str
    label_ja: str
    text: str
    length: int
    max_length: int
    limit: str
    over_by: int  # 0 when it fits; the text is never cut

    @property
    def fits(self) -> bool:
        return self.over_by == 0


def letter_text(form: LetterForm, content: LetterContent) -> dict[str, str]:
    """Each part of a letter as plain text, the same words the PDF prints."""
    urls = [i.url or "(URL未記入)" for i in content.items]
    times = [f"{i.url or ''} {i.posted_at_jst or '投稿日時不明'}".strip() for i in content.items]
    excerpts = [i.excerpt for i in content.items if i.excerpt]
    right = "、".join(content.choices.get("right", ()))
    guided = [
        f"【{f.label_ja}】\n{content.texts[f.code].strip()}"
        for f in form.fields
        if f.kind in ("guided", "text") and f.code != "reason" and (content.texts.get(f.code) or "").strip()
    ]
    reason = (content.texts.get("reason") or "").strip()
    reason_all = "\n\n".join([reason, *guided]) if guided else reason
    place_lines = [f"{i + 1}. {t}" for i, t in enumerate(times)]

    def label(code: str) -> str:
        field = form.field(code)
        assert field is not None, f"every letter form has the field {code!r} (validated on load)"
        return field.label_ja

    full = "\n".join(
        [
            f"{form.title_ja}({form.subtitle_ja})",
            f"{content.recipient} 御中",
            "",
            form.opening_ja,
            "",
            f"【{label('place')}】",
            *place_lines,
            f"【{label('information')}】",
            *excerpts,
            f"【{label('right')}】",
            right,
            f"【{label('reason')}】",
            reason_all,
            "",
            form.declaration_ja,
        ]
    )
    return {
        "urls": "\n".join(urls),
        "posted_at": "\n".join(times),
        "excerpt": "\n\n".join(excerpts),
        "right": right,
        "reason": reason_all,
        "full": full,
    }


def form_texts(form: LetterForm, content: LetterContent, web: WebForm) -> list[FormText]:
    parts = letter_text(form, content)
    out = []
    for f in web.fields:
        text = f.fixed_ja if f.source == "fixed" and f.fixed_ja else parts[f.source]
        n = len(text)
        out.append(FormText(f.code, f.label_ja, text, n, f.max_length, f.limit, max(0, n - f.max_length)))
    return out


# -- ports and the use cases -----------------------------------------------------------------------------


class LetterRepository(Protocol):
    async def add(self, letter: Letter) -> None: ...

    async def get(self, letter_id: uuid.UUID, visibility: Visibility) -> Letter | None: ...

    async def for_consultation(
        self, consultation_id: uuid.UUID, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[Letter]: ...

    async def save_state(self, letter: Letter, expected_version: int) -> bool: ...

    async def add_version(self, version: LetterVersion) -> None: ...

    async def add_review(self, review: LetterReview) -> None: ...

    async def awaiting_review(
        self, visibility: Visibility, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[Letter]:
        """Longest waiting first (by submitted_at, else created_at, then id), `limit` after the cursor."""
        ...


class LetterService:
    def __init__(self, answers: AnswerService, catalogue: LetterCatalogue) -> None:
        self.answers = answers
        self.consultations = answers.consultations
        self.catalogue = catalogue

    @property
    def uow(self) -> UnitOfWorkFactory[LetterUnitOfWork]:
        return self.consultations.uow

    def _now(self) -> datetime:
        return self.consultations.clock.now()

    def form(self, kind: LetterKind) -> LetterForm:
        return self.catalogue.form(kind)

    # -- the review rules, reused ----------------------------------------------------------------

    def reasons(self, c: Consultation, letter: Letter, requested: bool = False) -> list[str]:
        """The answer review rules decide, applied to the case plus the facts the letter implies (a
        disclosure request implies the person wants to identify the poster), and to the letter's text.
        Only letters whose form implies such facts (disclosure, private sexual images) are held to the
        rules; any other letter goes to review only when someone asks for it."""
        form = self.form(letter.kind)
        earlier = letter.review_reasons
        if not form.review_as:
            return list(dict.fromkeys([*earlier, *(["requested"] if requested else [])]))
        implied = replace(
            c,
            categories=sorted({*c.categories, *form.review_as.get("categories", ())}),
            desired_outcomes=sorted({*c.desired_outcomes, *form.review_as.get("desired_outcomes", ())}),
            urgency_flags=sorted({*c.urgency_flags, *form.review_as.get("urgency_flags", ())}),
        )
        text = "\n".join(v for v in letter.latest.content.texts.values() if v) if letter.versions else ""
        return self.answers.reasons(implied, requested, text, earlier)

    @staticmethod
    def rule_reasons(letter: Letter) -> list[str]:
        """The reasons that need the legal advisor's approval (a mere request for review does not)."""
        return [r for r in letter.review_reasons if r != "requested"]

    # -- access ------------------------------------------------------------------------------------

    async def _case(self, uow: LetterUnitOfWork, actor: Actor, consultation_id: uuid.UUID) -> Consultation:
        c = await self.consultations.load_visible(uow, actor, consultation_id)
        if actor.is_staff:
            ensure_may_work(actor, c)
        return c

    async def _letter(
        self, uow: LetterUnitOfWork, actor: Actor, c: Consultation, letter_id: uuid.UUID
    ) -> Letter:
        letter = await uow.letters.get(letter_id, letter_visibility(actor))
        if letter is None or letter.consultation_id != c.id:
            raise NotFound("letter_not_found")
        return letter

    async def _content(
        self, uow: LetterUnitOfWork, actor: Actor, c: Consultation, form: LetterForm, draft: Draft
    ) -> LetterContent:
        if not draft.evidence_ids:
            raise ValidationFailed("evidence_required", field="evidence_ids")
        items = []
        for eid in dict.fromkeys(draft.evidence_ids):
            # Looked up within this consultation only: an id of another case is refused exactly like an id
            # that does not exist, so nothing leaks about other cases.
            e: Evidence | None = await uow.consultations.get_evidence(c.id, eid, evidence_visibility(actor))
            if e is None:
                raise ValidationFailed("unknown_evidence", field="evidence_ids")
            items.append(LetterItem(e.id, e.url, e.posted_at, e.excerpt, e.platform))
        choices: dict[str, tuple[str, ...]] = {}
        for code, values in draft.choices.items():
            f = form.field(code)
            if f is None or f.kind != "choice":
                raise ValidationFailed("unknown_field", field=f"choices.{code}")
            picked = tuple(dict.fromkeys(values))
            if set(picked) - set(f.choices):
                raise ValidationFailed("unknown_option", field=f"choices.{code}")
            if picked:
                choices[code] = picked
        texts: dict[str, str] = {}
        for code, value in draft.texts.items():
            f = form.field(code)
            if f is None or f.kind not in ("guided", "text"):
                raise ValidationFailed("unknown_field", field=f"texts.{code}")
            if f.max_length is not None and len(value) > f.max_length:
                raise ValidationFailed("field_too_long", field=f"texts.{code}", max_length=f.max_length)
            if value.strip():
                texts[code] = value
        return LetterContent(draft.recipient, tuple(items), choices, texts, draft.sender)

    # -- the person writes -------------------------------------------------------------------------

    async def create(
        self, actor: Actor, consultation_id: uuid.UUID, kind: LetterKind, draft: Draft
    ) -> Letter:
        now = self._now()
        form = self.form(kind)
        async with self.uow() as uow:
            c = await self._case(uow, actor, consultation_id)
            ensure_owner(actor, c)
            _ensure_open(c)
            content = await self._content(uow, actor, c, form, draft)
            letter = Letter(
                uuid.uuid4(), c.id, kind, actor.require_user_id(), LetterState.draft, [], now, now
            )
            letter.versions.append(LetterVersion(uuid.uuid4(), letter.id, 1, content, letter.author_id, now))
            letter.review_reasons = self.reasons(c, letter)
            await uow.letters.add(letter)
            await uow.letters.add_version(letter.latest)
            await uow.audit.record(actor, "letter.created", "letter", letter.id)
            await uow.commit()
        return letter

    async def revise(
        self, actor: Actor, consultation_id: uuid.UUID, letter_id: uuid.UUID, draft: Draft
    ) -> Letter:
        now = self._now()
        async with self.uow() as uow:
            c = await self._case(uow, actor, consultation_id)
            ensure_owner(actor, c)
            _ensure_open(c)
            letter = await self._letter(uow, actor, c, letter_id)
            if letter.state not in EDITABLE:
                raise InvalidState("letter_not_editable", state=letter.state.value)
            content = await self._content(uow, actor, c, self.form(letter.kind), draft)
            version = LetterVersion(
                uuid.uuid4(), letter.id, letter.latest.number + 1, content, actor.require_user_id(), now
            )
            await uow.letters.add_version(version)
            letter.versions.append(version)
            letter.review_reasons = self.reasons(c, letter)
            # A new text needs a new approval: an approved letter goes back to draft.
            await self._set_state(uow, letter, LetterState.draft, now)
            await uow.commit()
        return letter

    async def get(self, actor: Actor, consultation_id: uuid.UUID, letter_id: uuid.UUID) -> Letter:
        async with self.uow() as uow:
            c = await self._case(uow, actor, consultation_id)
            return await self._letter(uow, actor, c, letter_id)

    async def list_for(
        self,
        actor: Actor,
        consultation_id: uuid.UUID,
        *,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> list[Letter]:
        """Newest first, `limit` after the cursor."""
        async with self.uow() as uow:
            c = await self._case(uow, actor, consultation_id)
            return await uow.letters.for_consultation(c.id, after=after, limit=limit)

    async def submit(self, actor: Actor, consultation_id: uuid.UUID, letter_id: uuid.UUID) -> Letter:
        """Ask for review: the person or the assigned staff member, for any letter."""
        now = self._now()
        async with self.uow() as uow:
            c = await self._case(uow, actor, consultation_id)
            letter = await self._letter(uow, actor, c, letter_id)
            if letter.state not in EDITABLE:
                raise InvalidState(
                    "invalid_transition", from_status=letter.state.value, to_status="awaiting_review"
                )
            letter.review_reasons = self.reasons(c, letter, requested=True)
            letter.submitted_at = now
            await self._set_state(uow, letter, LetterState.awaiting_review, now)
            await uow.audit.record(actor, "letter.submitted_for_review", "letter", letter.id)
            await uow.commit()
        return letter

    async def finalise(self, actor: Actor, consultation_id: uuid.UUID, letter_id: uuid.UUID) -> Letter:
        """Final only with every required field written, and, where the review rules apply, with the legal
        advisor's approval of this very version."""
        now = self._now()
        async with self.uow() as uow:
            c = await self._case(uow, actor, consultation_id)
            ensure_owner(actor, c)
            letter = await self._letter(uow, actor, c, letter_id)
            if letter.state not in (LetterState.draft, LetterState.approved):
                raise InvalidState("invalid_transition", from_status=letter.state.value, to_status="final")
            missing = missing_fields(self.form(letter.kind), letter.latest.content)
            if missing:
                raise InvalidState("letter_incomplete", fields=missing)
            letter.review_reasons = self.reasons(c, letter)
            needed = self.rule_reasons(letter)
            if needed and not letter.advisor_approved_latest():
                raise InvalidState("review_required", reasons=needed)
            letter.finalised_at = now
            await self._set_state(uow, letter, LetterState.final, now)
            await uow.audit.record(actor, "letter.finalised", "letter", letter.id)
            await uow.commit()
        return letter

    async def _set_state(
        self, uow: LetterUnitOfWork, letter: Letter, state: LetterState, now: datetime
    ) -> None:
        expected = letter.version
        letter.state, letter.updated_at, letter.version = state, now, expected + 1
        if not await uow.letters.save_state(letter, expected):
            raise PreconditionFailed("stale_version")

    def web_form(self, service: str) -> WebForm:
        web = self.catalogue.web_form(service)
        if web is None:
            raise ValidationFailed("unknown_code", field="service")
        return web

    # -- review ------------------------------------------------------------------------------------

    async def queue(
        self, actor: Actor, *, after: Cursor | None = None, limit: int | None = None
    ) -> list[Letter]:
        """Longest waiting first, `limit` after the cursor, and one more when another page follows (that one
        only says so: it is not read, so it is not on the trail). The letters read are on the trail."""
        ensure_legal_advisor(actor)
        async with self.uow() as uow:
            letters = await uow.letters.awaiting_review(
                review_visibility(actor), after=after, limit=None if limit is None else limit + 1
            )
            for letter in letters[:limit]:
                # The advisor reads the letters' content here: on the trail (ids only), like a case read.
                await uow.audit.record(actor, "letter.read_for_review", "letter", letter.id)
            await uow.commit()
        return letters

    async def decide(self, actor: Actor, letter_id: uuid.UUID, approve: bool, advice: str | None) -> Letter:
        """The legal advisor decides on a letter while it waits for review; the assigned caseworker may
        also approve or return it (advice to the person), but only the advisor's approval satisfies the
        review rules."""
        ensure_role(actor, LETTER_REVIEWERS)
        if not approve and not (advice and advice.strip()):
            raise ValidationFailed("advice_required", field="advice")
        now = self._now()
        async with self.uow() as uow:
            letter = await uow.letters.get(letter_id, letter_visibility(actor))
            if may(actor, LEGAL_ADVISORS):
                if letter is None or letter.state is not LetterState.awaiting_review:
                    raise NotFound("letter_not_found")
            else:
                if letter is None:
                    raise NotFound("letter_not_found")
                c = await self._case(uow, actor, letter.consultation_id)
                letter = await self._letter(uow, actor, c, letter_id)
                if letter.state is not LetterState.awaiting_review:
                    raise InvalidState(
                        "invalid_transition", from_status=letter.state.value, to_status="reviewed"
                    )
            review = LetterReview(
                uuid.uuid4(),
                letter.id,
                letter.latest.number,
                actor.require_user_id(),
                actor.role.value if actor.role else "",
                "approved" if approve else "returned",
                advice or None,
                now,
            )
            await uow.letters.add_review(review)
            letter.reviews.append(review)
            await self._set_state(uow, letter, LetterState.approved if approve else LetterState.returned, now)
            await uow.audit.record(actor, f"letter.review_{review.decision}", "letter", letter.id)
            await uow.commit()
        return letter


def _ensure_open(c: Consultation) -> None:
    """Letters are written while the consultation is open, as requests are; a closed one is reopened first."""
    if c.status not in OPEN_STATUSES:
        raise InvalidState("consultation_not_open")
