"""Bodies for the desk directory, platforms, the chart, triage, guides and referrals."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from pydantic import ConfigDict, Field, StrictBool
from pydantic.config import JsonDict

from api.schemas.common import Day, Input, Output, Timestamp
from api.schemas.text import Code, MultiLine, SingleLine


class DeskOut(Output):
    code: str
    name_ja: str
    name_en: str
    phone: str | None
    url: str | None
    hours_ja: str | None
    kind: str


class DeskDetail(DeskOut):
    handles_ja: str
    handles_en: str
    categories: list[str]
    emergency: bool
    last_verified: date | None
    uncertain: bool
    notes_ja: str | None
    version: int


DESK_EXAMPLE: JsonDict = {
    "code": "tokyo_bar_association",
    "name_ja": "東京弁護士会 法律相談センター",
    "name_en": "Tokyo Bar Association legal consultation centre",
    "handles_ja": "インターネット上の誹謗中傷の削除や発信者情報開示について、弁護士が相談に応じます。",
    "handles_en": "Lawyers advise on removing defamatory posts and on identifying posters.",
    "phone": "03-0000-0000",
    "url": "https://www.example.jp/soudan",
    "hours_ja": "平日 10:00〜16:00",
    "kind": "legal",
    "categories": ["RIGHTS.DEFAMATION", "RIGHTS.PRIVACY_ID"],
    "emergency": False,
    "last_verified": "2026-11-29",
    "note": "新規追加",
}


class DeskCreate(Input):
    model_config = ConfigDict(json_schema_extra={"examples": [DESK_EXAMPLE]})

    code: Code
    name_ja: Annotated[str, SingleLine(min_length=1, max_length=200)]
    name_en: Annotated[str, SingleLine(min_length=1, max_length=200)]
    handles_ja: Annotated[str, MultiLine(min_length=1, max_length=2000)]
    handles_en: Annotated[str, MultiLine(min_length=1, max_length=2000)]
    phone: Annotated[str, SingleLine(max_length=50)] | None = None
    url: Annotated[str, SingleLine(max_length=500)] | None = None
    hours_ja: Annotated[str, MultiLine(max_length=200)] | None = None
    kind: Code
    categories: list[Code] = Field(default_factory=list, max_length=50)
    emergency: StrictBool = False
    last_verified: Day | None = None
    uncertain: StrictBool = False
    notes_ja: Annotated[str, MultiLine(max_length=2000)] | None = None
    note: Annotated[str, MultiLine(max_length=500)] | None = Field(
        None, description="Why (kept with the version)"
    )


class DeskUpdate(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "hours_ja": "平日 9:00〜17:00（祝日を除く）",
                    "last_verified": "2026-11-29",
                    "note": "受付時間の変更を公式サイトで確認",
                }
            ]
        }
    )

    name_ja: Annotated[str, SingleLine(min_length=1, max_length=200)] | None = None
    name_en: Annotated[str, SingleLine(min_length=1, max_length=200)] | None = None
    handles_ja: Annotated[str, MultiLine(min_length=1, max_length=2000)] | None = None
    handles_en: Annotated[str, MultiLine(min_length=1, max_length=2000)] | None = None
    phone: Annotated[str, SingleLine(max_length=50)] | None = None
    url: Annotated[str, SingleLine(max_length=500)] | None = None
    hours_ja: Annotated[str, MultiLine(max_length=200)] | None = None
    kind: Code | None = None
    categories: list[Code] | None = Field(None, max_length=50)
    emergency: StrictBool | None = None
    last_verified: Day | None = None
    uncertain: StrictBool | None = None
    notes_ja: Annotated[str, MultiLine(max_length=2000)] | None = None
    note: Annotated[str, MultiLine(max_length=500)] | None = None


class DeskVersionOut(Output):
    version: int
    changed_at: Timestamp
    changed_by: uuid.UUID | None
    note: str | None
    desk: DeskDetail


class ReportRouteOut(Output):
    name_ja: str
    url: str | None


class PlatformOut(Output):
    code: str
    name_ja: str
    name_en: str
    operator: str
    report_routes: list[ReportRouteOut]
    designated: bool = Field(description="Designated under the 情報流通プラットフォーム対処法")
    designated_since: date | None
    accepts_standard_letters: str = Field(description="yes, no or uncertain")
    notes_ja: str


class ChartOptionOut(Output):
    id: str
    label_ja: str
    label_en: str
    next: str


class ChartNodeOut(Output):
    id: str
    kind: str
    text_ja: str
    text_en: str
    options: list[ChartOptionOut]
    title_ja: str
    title_en: str
    guidance_ja: str
    guidance_en: str
    desks: list[str]
    guides: list[str]
    multiple: bool = Field(
        default=False, description="A question whose options may be chosen together (send them in a row)"
    )
    also: list[str] = Field(
        default=[], description="At an outcome: other outcomes that apply as well (あわせて)"
    )
    goals: list[str] = Field(default=[], description="At an outcome: the goals it serves")
    origin: str = Field(
        default="centre",
        description="government: a step of the government flowchart; centre: the centre's own",
    )


class ChartSourceOut(Output):
    title_ja: str
    publisher_ja: str
    urls: list[str]
    checked: date | None
    edition: str | None = Field(description="The flowchart edition followed; null when it is not known")
    notes_ja: str


class ChartOut(Output):
    version: str
    start: str
    nodes: list[ChartNodeOut]
    source: ChartSourceOut | None = Field(description="Which government flowchart the chart follows")


class ChartWalkIn(Input):
    model_config = ConfigDict(json_schema_extra={"examples": [{"answers": ["danger_no", "topic_abuse"]}]})

    answers: list[Annotated[str, SingleLine(min_length=1, max_length=64)]] = Field(max_length=50)


class GuideBrief(Output):
    slug: str
    title_ja: str
    title_en: str
    summary_ja: str


class GuideStepOut(Output):
    title_ja: str
    title_en: str
    body_ja: str
    body_en: str = Field(default="", description="The step in English (every guide declares ja and en)")


class GuideOut(GuideBrief):
    summary_en: str
    steps: list[GuideStepOut]
    related_desks: list[str]
    related_categories: list[str]


class ChartWalkOut(Output):
    chart_version: str
    done: bool
    answers: list[str]
    node: ChartNodeOut
    also: list[ChartNodeOut] = Field(
        default=[], description="At an outcome, あわせて: the other goals chosen, then what else applies"
    )
    desks: list[DeskOut] = Field(description="At an outcome: the desks with current contact details")
    guides: list[GuideBrief]


class TriageIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "text": "爆サイに実名と勤務先を書かれて、「死ね」とまで言われています。消してもらうにはどうすればいいですか。"
                }
            ]
        }
    )

    text: Annotated[str, MultiLine(min_length=1, max_length=4000)]


class CategorySuggestionOut(Output):
    code: str
    label_ja: str
    label_en: str
    score: float
    triggers: list[str] = Field(description="The phrases of the text that led to this suggestion")


class UrgencyFlagOut(Output):
    flag: str
    triggers: list[str]
    desks: list[str]


class TriageOut(Output):
    categories: list[CategorySuggestionOut]
    urgency: list[UrgencyFlagOut]
    desks: list[DeskOut]
    guides: list[GuideBrief]
    rules_version: str


class ReferralIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "desk_code": "houterasu",
                    "reason": "発信者情報開示命令の申立てには弁護士への相談が必要なため、法テラスをご案内します。",
                }
            ]
        }
    )

    desk_code: Code
    reason: Annotated[str, MultiLine(min_length=1, max_length=2000)]


class ReferralOut(Output):
    id: uuid.UUID
    desk_code: str
    desk: DeskOut | None = Field(description="The desk's current contact details")
    reason: str
    state: str
    created_at: Timestamp
    updated_at: Timestamp
