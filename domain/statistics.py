"""The centre's statistics: breakdowns per fiscal year (April–March, Japan time), quarter and month, for
supervisors in full and, through the one suppression rule (domain/disclosure.py), for the council and for
anything published (CSV, charts, the yearly report).

Every count comes from the repository (`StatisticsRepository`), which computes it in SQL with GROUP BY over
the whole period; this module only arranges the grouped figures into tables and protects them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from domain.actors import Actor
from domain.calendar import JST
from domain.disclosure import DEFAULT_THRESHOLD, Protected, protect, protect_linked
from domain.errors import NotFound, ValidationFailed
from domain.knowledge_model import Knowledge
from domain.policy import statistics_suppressed
from domain.ports import Clock

GRANULARITIES = ("month", "quarter", "year")


@dataclass(frozen=True, slots=True)
class Bucket:
    key: str
    label_ja: str
    label_en: str
    start: datetime
    end: datetime
    provisional: bool = False  # the period has not ended yet (its figures still change)


def fiscal_year_start(fiscal_year: int) -> datetime:
    return datetime(fiscal_year, 4, 1, tzinfo=JST)


def fiscal_year_of(instant: datetime) -> int:
    local = instant.astimezone(JST)
    return local.year if local.month >= 4 else local.year - 1


def month_buckets(fiscal_year: int) -> list[Bucket]:
    """The twelve months of a fiscal year, as instants (JST midnight boundaries)."""
    out = []
    for k in range(12):
        y, m = fiscal_year + (3 + k) // 12, (3 + k) % 12 + 1
        ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
        out.append(
            Bucket(
                f"{y:04d}-{m:02d}",
                f"{y}年{m}月",
                f"{y}-{m:02d}",
                datetime(y, m, 1, tzinfo=JST),
                datetime(ny, nm, 1, tzinfo=JST),
            )
        )
    return out


def buckets(fiscal_year: int, granularity: str) -> list[Bucket]:
    months = month_buckets(fiscal_year)
    if granularity == "month":
        return months
    if granularity == "quarter":
        return [
            Bucket(
                f"{fiscal_year}-Q{q + 1}",
                f"第{q + 1}四半期",
                f"Q{q + 1}",
                months[3 * q].start,
                months[3 * q + 2].end,
            )
            for q in range(4)
        ]
    if granularity == "year":
        return [
            Bucket(
                f"FY{fiscal_year}", f"{fiscal_year}年度", f"FY{fiscal_year}", months[0].start, months[-1].end
            )
        ]
    raise ValidationFailed("invalid_granularity", field="granularity")


# -- what is counted ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dimension:
    code: str
    label_ja: str
    label_en: str
    note_ja: str
    # Consultation-level dimensions with one value per consultation share their margins (consultations per
    # month), so their suppression is harmonised; the others count mentions (a consultation may have several).
    single_valued: bool
    # What one count is: a consultation, or (for the request tables) a request sent. Single-valued tables of
    # the same population share their margins.
    population: str = "consultation"


DIMENSIONS: tuple[Dimension, ...] = (
    Dimension(
        "channel",
        "相談経路",
        "channel",
        "相談の受付経路(マイページのWebフォーム・LINE・チャットボットからの引き継ぎ)",
        True,
    ),
    Dimension("relation", "相談者の立場", "consulter relation", "相談者と被害者との関係", True),
    Dimension(
        "reconsultation", "初回・再相談", "re-consultation", "同じ相談者が以前にも相談していたか", True
    ),
    Dimension(
        "category_group",
        "相談分類(大分類)",
        "category group",
        "違法(権利侵害・その他の違法)と有害(公序良俗・青少年)。1件に複数の分類があれば各分類に数える",
        False,
    ),
    Dimension("category", "相談分類(中分類)", "category", "1件に複数の分類があれば各分類に数える", False),
    Dimension(
        "platform",
        "事業者・サービス",
        "platform service",
        "相談者が選んだ事業者・サービス。1件に複数あれば各々に数える",
        False,
    ),
    Dimension(
        "platform_kind",
        "サービスの種類",
        "platform kind",
        "事業者・サービスの種類(参照データによる)。1件に同じ種類が複数あっても1件",
        False,
    ),
    Dimension("urgency_flag", "緊急フラグ", "urgency flag", "トリアージ・相談員が付けた緊急フラグ", False),
    Dimension(
        "referral_desk", "紹介先窓口", "referrals by desk", "紹介の件数(紹介した日の月に数える)", False
    ),
    # Removal and disclosure requests (the request tracker, domain/requests.py): each request that went out,
    # counted in the month it was sent, once by kind and once by its outcome so far. Both count every sent
    # request once, so they share their margins (requests per month) as the consultation tables do.
    Dimension(
        "request_kind",
        "削除等依頼の種類",
        "requests by kind",
        "送付した削除・開示等の依頼(送付した日の月に数える)",
        True,
        "request",
    ),
    Dimension(
        "request_outcome",
        "削除等依頼の結果",
        "request outcomes",
        "送付した依頼の現時点の結果(送付した日の月に数える)",
        True,
        "request",
    ),
)
DIMENSION_CODES = tuple(d.code for d in DIMENSIONS)
TIMING_CODE = "first_answer"


def dimension(code: str) -> Dimension:
    for d in DIMENSIONS:
        if d.code == code:
            return d
    raise NotFound("statistics_table_not_found")


# The request tracker's vocabulary (domain/requests.py RequestKind, RequestStatus), labelled for the tables.
REQUEST_KINDS = {
    "platform_form": ("事業者のフォームによる削除依頼", "removal through the platform's form"),
    "removal_letter": ("送信防止措置依頼書", "removal letter"),
    "search_delisting": ("検索結果の削除依頼", "search delisting"),
    "disclosure_request": ("発信者情報開示請求", "disclosure request"),
    "disclosure_order": ("発信者情報開示命令", "disclosure order"),
    "inquiry_reply": ("意見照会への回答", "reply to an inquiry"),
    "hotline_report": ("ホットラインへの通報", "hotline report"),
    "bureau_report": ("法務局への申告", "report to the Legal Affairs Bureau"),
}
# Outcomes: the request's status, `sent` and `acknowledged` both being "awaiting an answer".
REQUEST_OUTCOMES = {
    "awaiting": ("回答待ち", "awaiting an answer"),
    "removed": ("削除された", "removed"),
    "partly_removed": ("一部削除された", "partly removed"),
    "refused": ("応じられなかった", "refused"),
    "no_answer": ("回答なし", "no answer"),
    "withdrawn": ("取り下げ", "withdrawn"),
}
OUTCOME_OF_STATUS = {"sent": "awaiting", "acknowledged": "awaiting"}


@dataclass(frozen=True, slots=True)
class Label:
    code: str
    label_ja: str
    label_en: str


def _vocabulary(knowledge: Knowledge, code: str) -> list[Label]:
    intake = knowledge.intake
    if code in ("channel", "relation", "platform_kind", "urgency_flag"):
        name = {"channel": "channels", "relation": "relations", "platform_kind": "platform_kinds"}.get(
            code, "urgency_flags"
        )
        return [Label(i.code, i.label_ja, i.label_en) for i in intake.get(name, ())]
    if code == "reconsultation":
        return [Label("first", "初回", "first consultation"), Label("repeat", "再相談", "re-consultation")]
    if code == "category_group":
        nature = {
            "illegal": ("違法", "illegal"),
            "harmful": ("有害", "harmful"),
            "other": ("その他", "other"),
        }
        return [
            Label(g.code, f"{nature[g.nature][0]}:{g.label_ja}", f"{nature[g.nature][1]}: {g.label_en}")
            for g, _ in knowledge.category_tree()
        ]
    if code == "category":
        return [Label(c.code, c.label_ja, c.label_en) for c in knowledge.leaf_categories()]
    if code == "platform":
        return [Label(p.code, p.name_ja, p.name_en) for p in knowledge.platforms]
    if code == "referral_desk":
        return [Label(d.code, d.name_ja, d.name_en) for d in knowledge.desks]
    if code == "request_kind":
        return [Label(k, ja, en) for k, (ja, en) in REQUEST_KINDS.items()]
    if code == "request_outcome":
        return [Label(k, ja, en) for k, (ja, en) in REQUEST_OUTCOMES.items()]
    raise NotFound("statistics_table_not_found")


def groupings(knowledge: Knowledge) -> dict[str, dict[str, str]]:
    """Code → group for the dimensions the SQL groups through reference data."""
    return {
        "category_group": {c.code: (c.parent or c.code) for c in knowledge.categories},
        "platform_kind": {p.code: p.kind for p in knowledge.platforms},
    }


# -- the port ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timing:
    """Time to first answer of the consultations opened in one bucket."""

    consultations: int
    answered: int
    within_target: int
    median_seconds: float | None
    p90_seconds: float | None


class StatisticsRepository(Protocol):
    async def counts(
        self, dimension: str, buckets: Sequence[Bucket], groups: Mapping[str, str] | None
    ) -> dict[tuple[str, str], int]:
        """(value, bucket key) → count, in SQL with GROUP BY over the buckets' whole span."""
        ...

    async def first_answer_times(self, buckets: Sequence[Bucket]) -> dict[str, Timing]:
        """Bucket key → time to first answer (median and 90th percentile computed in SQL)."""
        ...


# -- tables ------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    key: str
    label_ja: str
    label_en: str
    cells: list[int | None]
    total: int | None


@dataclass(slots=True)
class Table:
    code: str
    label_ja: str
    label_en: str
    note_ja: str
    columns: list[Bucket]
    rows: list[Row]
    column_totals: list[int | None]
    total: int | None
    suppressed: bool


@dataclass(slots=True)
class TimingRow:
    key: str
    label_ja: str
    label_en: str
    consultations: int | None
    answered: int | None
    within_target: int | None
    within_target_share: float | None
    median_hours: float | None
    p90_hours: float | None
    provisional: bool = False


@dataclass(slots=True)
class Statistics:
    fiscal_year: int
    granularity: str
    start: datetime
    end: datetime
    suppressed: bool
    threshold: int
    target_ja: str
    tables: list[Table] = field(default_factory=list)
    first_answer: list[TimingRow] = field(default_factory=list)

    def table(self, code: str) -> Table:
        for t in self.tables:
            if t.code == code:
                return t
        raise NotFound("statistics_table_not_found")


def _matrix(
    labels: list[Label], counts: Mapping[tuple[str, str], int], months: list[Bucket]
) -> tuple[list[Label], list[list[int]]]:
    known = {lab.code for lab in labels}
    extra = sorted({value for value, _ in counts if value not in known})
    rows = [*labels, *(Label(v, v, v) for v in extra)]
    return rows, [[counts.get((r.code, m.key), 0) for m in months] for r in rows]


def _fold(cells: list[int | None], granularity: str) -> list[int | None]:
    """Monthly figures to the asked granularity. After suppression, a quarter (or the year) is shown only when
    all its months are, as their sum: a withheld month can then never be recovered as a quarter minus the
    other months, in one reading or across readings. A shortened grid (the council's closed months) gives only
    the periods it covers entirely."""
    if granularity == "month":
        return cells
    size = 3 if granularity == "quarter" else 12
    out: list[int | None] = []
    for k in range(0, len(cells) - size + 1, size):
        part = cells[k : k + size]
        out.append(None if any(v is None for v in part) else sum(v for v in part if v is not None))
    return out


# The hierarchies published as two tables each: the group table's rows are sums of the leaf table's rows.
LINKED = (("category_group", "category"), ("platform_kind", "platform"))


def closed_months(fiscal_year: int, now: datetime) -> int:
    """How many months of the fiscal year have ended by `now` (0–12, Japan-time month boundaries)."""
    return sum(m.end <= now for m in month_buckets(fiscal_year))


def visible_columns(fiscal_year: int, granularity: str, closed: int) -> list[Bucket]:
    """The periods of the granularity that lie within the first `closed` months."""
    months = month_buckets(fiscal_year)
    return [b for b in buckets(fiscal_year, granularity) if closed and b.end <= months[closed - 1].end]


def with_provisional(fiscal_year: int, granularity: str, closed: int) -> list[Bucket]:
    """Every period of the granularity, those not ended within the first `closed` months marked provisional."""
    shown = {b.key for b in visible_columns(fiscal_year, granularity, closed)}
    return [b if b.key in shown else replace(b, provisional=True) for b in buckets(fiscal_year, granularity)]


def build_tables(
    knowledge: Knowledge,
    counts: Mapping[str, Mapping[tuple[str, str], int]],
    fiscal_year: int,
    granularity: str,
    *,
    suppressed: bool,
    threshold: int = DEFAULT_THRESHOLD,
    closed: int = 12,
) -> list[Table]:
    """Monthly grouped counts → tables at the granularity, protected month by month when `suppressed`.

    Suppressed tables cover only the `closed` months (periods that have ended): the still-filling month is
    not published. Each closed month is protected on its own (`_protect_months`), so it reads the same
    whenever it is read; a total over months (a row's year so far, a quarter, the year) is shown only when
    all the months it adds up are. Unsuppressed tables show every month, the open ones marked provisional."""
    months = month_buckets(fiscal_year)
    columns = buckets(fiscal_year, granularity)
    grid = months
    if suppressed:
        grid, columns = months[:closed], visible_columns(fiscal_year, granularity, closed)
    else:
        columns = with_provisional(fiscal_year, granularity, closed)
    shaped = {
        d.code: _matrix(_vocabulary(knowledge, d.code), counts[d.code], grid)
        for d in DIMENSIONS
        if d.code in counts
    }
    protected: dict[str, Protected] = {}
    if suppressed and grid:
        protected = _protect_months(knowledge, shaped, len(grid), threshold)
    tables = []
    for d in DIMENSIONS:
        if d.code not in shaped:
            continue
        labels, matrix = shaped[d.code]
        if suppressed and not grid:  # nothing has closed yet: no figure at all
            rows = [Row(lab.code, lab.label_ja, lab.label_en, [], None) for lab in labels]
            column_totals, total = [], None
        elif suppressed:
            p = protected[d.code]
            rows = [
                Row(lab.code, lab.label_ja, lab.label_en, _fold(p.cells[i], granularity), p.row_totals[i])
                for i, lab in enumerate(labels)
            ]
            column_totals, total = _fold(p.column_totals, granularity), p.total
        else:
            rows = [
                Row(lab.code, lab.label_ja, lab.label_en, _fold(list(matrix[i]), granularity), sum(matrix[i]))
                for i, lab in enumerate(labels)
            ]
            column_totals = _fold(
                [sum(matrix[i][j] for i in range(len(matrix))) for j in range(12)], granularity
            )
            total = sum(sum(r) for r in matrix)
        tables.append(
            Table(d.code, d.label_ja, d.label_en, d.note_ja, columns, rows, column_totals, total, suppressed)
        )
    return tables


def _protect_months(
    knowledge: Knowledge,
    shaped: Mapping[str, tuple[list[Label], list[list[int]]]],
    months: int,
    threshold: int,
) -> dict[str, Protected]:
    """Each closed month protected on its own, with its own totals; every aggregate over months (a row's year
    so far, a quarter, the year, the grand total) is published only when every month it adds up is, so it
    is their sum and says nothing the months do not.

    Why per month: a month's published pattern then depends on that month's figures alone, so it is the same
    in every reading, whenever taken. Readings a month apart cannot be differenced (this year so far minus
    last month's year so far would be the newly closed month, withheld there), nor a closed quarter minus
    its published months, nor one reading's pattern combined with another's.

    Within a month the one rule runs as before: tables that count each consultation once share the month's
    total (withheld in one, withheld in all), and linked tables (a hierarchy) are protected together."""
    matrices = {code: matrix for code, (_, matrix) in shaped.items()}
    groups = groupings(knowledge)
    cells: dict[str, list[list[int | None]]] = {c: [[None] * months for _ in m] for c, m in matrices.items()}
    month_totals: dict[str, list[int | None]] = {c: [None] * months for c in matrices}

    def column(code: str, j: int) -> list[int]:
        return [row[j] for row in matrices[code]]

    for j in range(months):
        done: set[str] = set()
        for population in sorted({d.population for d in DIMENSIONS}):
            shared = [
                d.code
                for d in DIMENSIONS
                if d.single_valued and d.population == population and d.code in matrices
            ]
            forced = False
            ps: dict[str, Protected] = {}
            while shared:
                for code in shared:
                    col = column(code, j)
                    force = frozenset({(0, len(col))}) if forced else frozenset()
                    ps[code] = protect([col], threshold, forced=force)
                if forced or all(p.total is not None for p in ps.values()):
                    break
                forced = True  # one table withholds the month's total: all of them do
            for code, p in ps.items():
                for i, v in enumerate(p.cells[0]):
                    cells[code][i][j] = v
                month_totals[code][j] = p.total
            done |= set(shared)
        for group_code, leaf_code in LINKED:
            if group_code in matrices and leaf_code in matrices:
                index = {lab.code: k for k, lab in enumerate(shaped[group_code][0])}
                parent = [
                    index.get(groups[group_code].get(lab.code, "other")) for lab in shaped[leaf_code][0]
                ]
                g, leaf = protect_linked(
                    [[v] for v in column(group_code, j)],
                    [[v] for v in column(leaf_code, j)],
                    parent,
                    threshold,
                )
                for code, p in ((group_code, g), (leaf_code, leaf)):
                    for i, row in enumerate(p.cells):
                        cells[code][i][j] = row[0]
                    shown = p.column_totals[0] is not None and p.total is not None
                    month_totals[code][j] = p.column_totals[0] if shown else None
                    done.add(code)
        for code in matrices:
            if code not in done:
                p = protect([column(code, j)], threshold)
                for i, v in enumerate(p.cells[0]):
                    cells[code][i][j] = v
                month_totals[code][j] = p.total

    def whole(values: list[int | None]) -> int | None:
        return None if any(v is None for v in values) else sum(v for v in values if v is not None)

    return {
        code: Protected(
            cells[code], [whole(row) for row in cells[code]], month_totals[code], whole(month_totals[code])
        )
        for code in matrices
    }


def timing_rows(
    timings: Mapping[str, Timing], columns: list[Bucket], *, suppressed: bool, threshold: int
) -> list[TimingRow]:
    out = []
    for b in columns:
        t = timings.get(b.key, Timing(0, 0, 0, None, None))
        # A median or a share over fewer than `threshold` answers describes a handful of people: withheld.
        hide = suppressed and 0 < t.answered < threshold
        hide_n = suppressed and 0 < t.consultations < threshold
        # Suppressed output carries no counts here at all: these buckets are recomputed per granularity, so a
        # quarter's count minus its shown months (or consultations minus answered) would give back a small
        # cell the count tables withhold. The shares and durations over enough answers stay.
        out.append(
            TimingRow(
                b.key,
                b.label_ja,
                b.label_en,
                None if suppressed else t.consultations,
                None if suppressed else t.answered,
                None if suppressed else t.within_target,
                None if hide or hide_n or not t.answered else round(t.within_target / t.answered, 3),
                None if hide or hide_n or t.median_seconds is None else round(t.median_seconds / 3600, 1),
                None if hide or hide_n or t.p90_seconds is None else round(t.p90_seconds / 3600, 1),
                b.provisional,
            )
        )
    return out


# -- the use case ------------------------------------------------------------------------------------------


class StatisticsService:
    def __init__(
        self, uow: Any, clock: Clock, knowledge: Knowledge, threshold: int = DEFAULT_THRESHOLD
    ) -> None:
        self.uow = uow
        self.clock = clock
        self.knowledge = knowledge
        self.threshold = threshold

    def _suppressed_for(self, actor: Actor, asked: bool) -> bool:
        return statistics_suppressed(actor, asked)

    async def statistics(
        self,
        actor: Actor,
        fiscal_year: int | None,
        granularity: str = "month",
        *,
        suppress: bool = False,
        only: str | None = None,
    ) -> Statistics:
        suppressed = self._suppressed_for(actor, suppress)
        if granularity not in GRANULARITIES:
            raise ValidationFailed("invalid_granularity", field="granularity")
        fy = fiscal_year if fiscal_year is not None else fiscal_year_of(self.clock.now())
        if not 2000 <= fy <= 2100:
            raise ValidationFailed("invalid_fiscal_year", field="fiscal_year")
        if only is not None and only != TIMING_CODE:
            dimension(only)
        months = month_buckets(fy)
        closed = closed_months(fy, self.clock.now())
        # The suppressed figures (the council's, and anything published) cover the closed periods only.
        columns = (
            visible_columns(fy, granularity, closed)
            if suppressed
            else with_provisional(fy, granularity, closed)
        )
        groups = groupings(self.knowledge)
        # The shared margins make the single-valued tables depend on each other, and linked tables (a
        # hierarchy) are protected together: they are fetched together.

        def needed(d: Dimension) -> bool:
            if only is None or d.code == only:
                return True
            if not suppressed or only == TIMING_CODE:
                return False
            asked = dimension(only)
            if d.single_valued and asked.single_valued and d.population == asked.population:
                return True
            return any(only in pair and d.code in pair for pair in LINKED)

        wanted = [d.code for d in DIMENSIONS if needed(d)]
        grid = months[:closed] if suppressed else months
        async with self.uow() as uow:
            counts = {
                code: (await uow.statistics.counts(code, grid, groups.get(code)) if grid else {})
                for code in wanted
            }
            timings = (
                await uow.statistics.first_answer_times(columns)
                if only in (None, TIMING_CODE) and columns
                else {}
            )
            await uow.audit.record(
                actor, "statistics.read", "fiscal_year", str(fy), {"suppressed": suppressed}
            )
            await uow.commit()
        if only == TIMING_CODE:
            counts = {}
        stats = Statistics(
            fiscal_year=fy,
            granularity=granularity,
            start=months[0].start,
            end=months[-1].end,
            suppressed=suppressed,
            threshold=self.threshold,
            target_ja="初回回答の目標:各相談の受付時に定めた回答期限(受付から所定の営業日数後の業務終了時刻、first_answer_due_at)まで",
            tables=build_tables(
                self.knowledge,
                counts,
                fy,
                granularity,
                suppressed=suppressed,
                threshold=self.threshold,
                closed=closed,
            ),
            first_answer=timing_rows(timings, columns, suppressed=suppressed, threshold=self.threshold)
            if only in (None, TIMING_CODE)
            else [],
        )
        if only is not None and only != TIMING_CODE:
            stats.tables = [stats.table(only)]
        return stats
