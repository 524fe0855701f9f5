"""The centre's statistics (issue 18): tables as JSON or CSV, charts as PNG or SVG, the yearly report as PDF.

Supervisors see the figures in full unless they ask `suppress=true` (what they publish); the council always
gets them suppressed; everyone else is refused (403 role_not_allowed, as for the council's other routes)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from api.deps import ContainerDep, Person, require
from api.schemas.common import QueryFlag, problem_responses
from api.schemas.statistics import FirstAnswerOut, StatisticsOut, TableOut, statistics_out, table_out
from api.schemas.text import SingleLine
from domain import policy
from domain.actors import Actor
from domain.errors import NotFound
from domain.statistics import DIMENSION_CODES, TIMING_CODE, Statistics
from infra import reports

router = APIRouter(prefix="/v1/statistics", tags=["statistics"])

FiscalYear = Annotated[
    int | None,
    Query(
        ge=2000,
        le=2100,
        description="The year the fiscal year starts (April–March, Japan time); default: the current one",
    ),
]
Granularity = Annotated[
    Literal["month", "quarter", "year"], Query(description="Columns per month, quarter or the year")
]
Suppress = Annotated[
    QueryFlag,
    Query(
        description="Supervisors: apply the suppression rule (as published). The council always gets it applied."
    ),
]
TableFormat = Annotated[
    Literal["json", "csv"] | None,
    Query(description="json or csv; without it, `Accept: text/csv` asks for CSV and anything else gets JSON"),
]
ChartFormat = Annotated[
    Literal["png", "svg"] | None,
    Query(
        description="png or svg; without it, `Accept: image/svg+xml` asks for SVG and anything else gets PNG"
    ),
]
TABLE_CODES = (*DIMENSION_CODES, TIMING_CODE)
CSV_EXAMPLE = (  # granularity=quarter, suppressed: X is withheld (a total too, when one of its periods is)
    "\ufeff相談経路 (channel),コード (code),第1四半期 (Q1),第2四半期 (Q2),第3四半期 (Q3),第4四半期 (Q4),合計 (total)\r\n"
    "Webフォーム,web,130,125,120,137,512\r\n"
    "LINE,line,40,X,X,45,X\r\n"
    "チャットボット,chatbot,20,X,X,30,X\r\n"
    "合計 (total),,190,182,176,212,760\r\n"
)
ERRORS = problem_responses(401, 403, 404, 422)


async def _read(
    container: ContainerDep,
    actor: Actor,
    fiscal_year: int | None,
    granularity: str,
    suppress: bool,
    only: str | None = None,
) -> Statistics:
    return await container.statistics.statistics(
        actor, fiscal_year, granularity, suppress=suppress, only=only
    )


def _file(content: bytes, media_type: str, name: str) -> Response:
    return Response(
        content=content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


@router.get(
    "",
    operation_id="statistics_get",
    response_model=StatisticsOut,
    responses=problem_responses(401, 403, 422),
    summary="Statistics of a fiscal year: every table and the time to first answer",
    dependencies=[require(policy.STATISTICS_READERS)],
)
async def statistics(
    actor: Person,
    container: ContainerDep,
    fiscal_year: FiscalYear = None,
    granularity: Granularity = "month",
    suppress: Suppress = False,
) -> StatisticsOut:
    """Consultations of the fiscal year by channel, consulter relation, first or repeat consultation, category
    group and category, platform service and platform kind, urgency flag, referrals by desk, requests sent (by
    kind and by outcome so far), and the time to first answer (median and 90th percentile, and the share
    answered within the target) — all counted in SQL over the whole year. Counts of multi-valued fields
    (categories, platforms, flags) count each mention. Suppressed cells are null: counts below the threshold,
    and whichever cells would let one be recomputed from a published total, linked tables (category groups
    and categories, platform kinds and services) protected together. Suppressed figures (the council's, and
    `suppress=true`) cover the periods that have ended only, each month protected on its own so that it reads
    the same whenever it is read, and a total over months (a row's year so far, a quarter, the year) is shown
    only when all its months are; in the full view the open ones are `provisional`."""
    return statistics_out(await _read(container, actor, fiscal_year, granularity, suppress))


@router.get(
    "/tables/{table}",
    operation_id="statistics_table_get",
    response_model=TableOut | FirstAnswerOut,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE}}},
        **ERRORS,
    },
    summary="One statistics table, as JSON or CSV",
    dependencies=[require(policy.STATISTICS_READERS)],
)
async def statistics_table(
    request: Request,
    actor: Person,
    container: ContainerDep,
    table: Annotated[str, Path(max_length=32, description=", ".join(TABLE_CODES)), SingleLine()],
    fiscal_year: FiscalYear = None,
    granularity: Granularity = "month",
    suppress: Suppress = False,
    format: TableFormat = None,  # noqa: A002
) -> Response | TableOut | FirstAnswerOut:
    """The CSV is UTF-8 with a BOM and CRLF line ends (Excel in Japan opens it as is), with Japanese headers
    and the English beside them (`相談経路 (channel)`); withheld cells are `X`. `first_answer` is the time to
    first answer per period; its JSON is the `first_answer` part of `statistics_get`."""
    if table not in TABLE_CODES:
        raise NotFound("statistics_table_not_found")
    stats = await _read(container, actor, fiscal_year, granularity, suppress, only=table)
    wants_csv = format == "csv" or (format is None and "text/csv" in request.headers.get("accept", ""))
    name = f"statistics-{stats.fiscal_year}-{table}-{granularity}.csv"
    if table == TIMING_CODE:
        if wants_csv:
            return _file(reports.timing_csv(stats.first_answer), "text/csv; charset=utf-8", name)
        return statistics_out(stats).first_answer
    if wants_csv:
        return _file(reports.table_csv(stats.table(table)), "text/csv; charset=utf-8", name)
    return table_out(stats.table(table))


@router.get(
    "/charts/{chart}",
    operation_id="statistics_chart_get",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}, **ERRORS},
    summary="A chart of the yearly report, as PNG or SVG",
    dependencies=[require(policy.STATISTICS_READERS)],
)
async def statistics_chart(
    request: Request,
    actor: Person,
    container: ContainerDep,
    chart: Annotated[str, Path(max_length=32, description=", ".join(reports.CHARTS)), SingleLine()],
    fiscal_year: FiscalYear = None,
    suppress: Suppress = False,
    format: ChartFormat = None,  # noqa: A002
) -> Response:
    """monthly_trend (consultations per month), categories (by category group), platform_kinds, channels
    (share). Drawn with matplotlib in IPAexGothic; the SVG carries the glyphs as outlines."""
    if chart not in reports.CHARTS:
        raise NotFound("statistics_chart_not_found")
    stats = await _read(container, actor, fiscal_year, "month", suppress)
    svg = format == "svg" or (format is None and "image/svg+xml" in request.headers.get("accept", ""))
    fmt = "svg" if svg else "png"
    content = await asyncio.to_thread(reports.chart, stats, chart, fmt)
    return _file(
        content, "image/svg+xml" if svg else "image/png", f"statistics-{stats.fiscal_year}-{chart}.{fmt}"
    )


@router.get(
    "/report",
    operation_id="statistics_report_get",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}, **problem_responses(401, 403, 422)},
    summary="The yearly report as PDF: the tables and the charts",
    dependencies=[require(policy.STATISTICS_READERS)],
)
async def statistics_report(
    actor: Person,
    container: ContainerDep,
    fiscal_year: FiscalYear = None,
    suppress: Suppress = False,
) -> Response:
    """The same figures as `statistics_get` (monthly), one table per page, then the charts."""
    stats = await _read(container, actor, fiscal_year, "month", suppress)
    content = await asyncio.to_thread(reports.yearly_report, stats)
    return _file(content, "application/pdf", f"statistics-{stats.fiscal_year}.pdf")
