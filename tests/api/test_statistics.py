"""The statistics over HTTP (issue 18): JSON for supervisors and, suppressed, for the council; CSV for Excel;
charts as PNG and SVG; the yearly report as a PDF whose numbers are the API's."""

from __future__ import annotations

import csv
import io
import random
import re
from datetime import datetime, timedelta

import pytest
from PIL import Image

from domain.actors import Role
from domain.calendar import JST
from tests.api.consultation_helpers import open_consultation
from tests.conftest import assert_problem
from tests.pdf_tools import pdf_pages, pdf_text
from tests.statistics_data import Case, jst, random_cases, seed, with_requests

FY = 2025
YEAR = {"fiscal_year": FY}
AFTER = datetime(FY + 1, 12, 2, 10, tzinfo=JST)


@pytest.fixture
async def data(container, clock):  # type: ignore[no-untyped-def]
    clock.set(AFTER)  # the fiscal year has ended, whatever instant the suite is pinned to
    cases = random_cases(160, FY, random.Random(7), owners=120)
    # One LINE consultation from a school in April: a case one person could be recognised by.
    cases.append(
        Case(
            jst(FY, 4, 9), owner=900, channel="line", relation="school", first_answer_after=timedelta(hours=5)
        )
    )
    with_requests(cases, random.Random(8))
    await seed(container, cases)
    return cases


async def get(client, person, path: str, **params):  # type: ignore[no-untyped-def]
    return await client.get(path, headers=person.headers, params={**YEAR, **params})


def table(body: dict, code: str) -> dict:  # type: ignore[type-arg]
    return next(t for t in body["tables"] if t["code"] == code)


def row(t: dict, key: str) -> dict:  # type: ignore[type-arg]
    return next(r for r in t["rows"] if r["key"] == key)


async def test_supervisors_see_every_table_in_full(client, people, data) -> None:  # type: ignore[no-untyped-def]
    supervisor = await people.create(Role.supervisor)
    response = await get(client, supervisor, "/v1/statistics")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["fiscal_year"] == FY and body["suppressed"] is False
    assert body["start"] == "2025-03-31T15:00:00Z" and body["end"] == "2026-03-31T15:00:00Z"
    codes = [t["code"] for t in body["tables"]]
    assert codes == [
        "channel",
        "relation",
        "reconsultation",
        "category_group",
        "category",
        "platform",
        "platform_kind",
        "urgency_flag",
        "referral_desk",
        "request_kind",
        "request_outcome",
    ]
    channel = table(body, "channel")
    assert channel["total"] == len(data) and len(channel["columns"]) == 12
    assert channel["columns"][0] == {
        "key": "2025-04",
        "label_ja": "2025年4月",
        "label_en": "2025-04",
        "start": "2025-03-31T15:00:00Z",
        "end": "2025-04-30T15:00:00Z",
        "provisional": False,
    }
    assert row(channel, "line")["total"] == sum(c.channel == "line" for c in data)
    assert sum(table(body, "reconsultation")["column_totals"]) == len(data)
    assert row(table(body, "reconsultation"), "repeat")["total"] == len(data) - len({c.owner for c in data})
    assert len(body["first_answer"]["rows"]) == 12 and "回答期限" in body["first_answer"]["target_ja"]
    # Requests that went out, by kind and by outcome so far (a draft is not counted).
    sent = [(k, s) for c in data for k, s in c.requests if s != "drafted"]
    kinds, outcomes = table(body, "request_kind"), table(body, "request_outcome")
    assert kinds["total"] == outcomes["total"] == len(sent) > 0
    assert row(kinds, "removal_letter")["total"] == sum(k == "removal_letter" for k, _ in sent)
    assert row(outcomes, "awaiting")["total"] == sum(s in ("sent", "acknowledged") for _, s in sent)
    assert row(outcomes, "refused")["total"] == sum(s == "refused" for _, s in sent)
    assert row(outcomes, "refused")["label_ja"] == "応じられなかった"
    quarters = (await get(client, supervisor, "/v1/statistics", granularity="quarter")).json()
    q = table(quarters, "channel")
    assert [c["key"] for c in q["columns"]] == [f"{FY}-Q1", f"{FY}-Q2", f"{FY}-Q3", f"{FY}-Q4"]
    assert q["column_totals"][0] == sum(channel["column_totals"][:3])
    year = (await get(client, supervisor, "/v1/statistics", granularity="year")).json()
    assert table(year, "platform_kind")["rows"][0]["cells"] == [
        table(body, "platform_kind")["rows"][0]["total"]
    ]


async def test_the_council_gets_the_same_figures_suppressed(client, people, data) -> None:  # type: ignore[no-untyped-def]
    council = await people.create(Role.council)
    supervisor = await people.create(Role.supervisor)
    body = (await get(client, council, "/v1/statistics", suppress="false")).json()
    full = (await get(client, supervisor, "/v1/statistics")).json()
    published = (await get(client, supervisor, "/v1/statistics", suppress="true")).json()
    assert body["suppressed"] is True and body["tables"] == published["tables"]
    for t, f in zip(body["tables"], full["tables"], strict=True):
        for r, fr in zip(t["rows"], f["rows"], strict=True):
            for shown, truth in zip(r["cells"], fr["cells"], strict=True):
                assert shown is None or shown == truth
                if 0 < truth < 5:
                    assert shown is None
    # The school's one LINE consultation of April is not recoverable from the April total.
    april_line = row(table(body, "channel"), "line")["cells"][0]
    if row(table(full, "channel"), "line")["cells"][0] < 5:
        assert april_line is None
    april = [r["cells"][0] for r in table(body, "channel")["rows"]] + [
        table(body, "channel")["column_totals"][0]
    ]
    assert april.count(None) != 1


async def test_a_table_as_csv_for_excel(client, people, data) -> None:  # type: ignore[no-untyped-def]
    supervisor = await people.create(Role.supervisor)
    as_json = (await get(client, supervisor, "/v1/statistics/tables/channel", suppress="true")).json()
    response = await get(client, supervisor, "/v1/statistics/tables/channel", suppress="true", format="csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert (
        response.headers["content-disposition"] == f'attachment; filename="statistics-{FY}-channel-month.csv"'
    )
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    lines = list(csv.reader(io.StringIO(raw[3:].decode("utf-8"), newline="")))
    assert lines[0][:3] == ["相談経路 (channel)", "コード (code)", "2025年4月 (2025-04)"]
    assert lines[0][-1] == "合計 (total)"
    by_key = {line[1]: line for line in lines[1:-1]}
    for r in as_json["rows"]:
        assert by_key[r["key"]][2:] == [("X" if v is None else str(v)) for v in [*r["cells"], r["total"]]]
    assert lines[-1][0] == "合計 (total)"
    # Content negotiation: Accept: text/csv without the parameter.
    negotiated = await client.get(
        "/v1/statistics/tables/channel",
        headers={**supervisor.headers, "Accept": "text/csv"},
        params={**YEAR, "suppress": "true"},
    )
    assert negotiated.content == raw
    timing = await get(client, supervisor, "/v1/statistics/tables/first_answer", format="csv")
    assert (
        timing.content.decode("utf-8-sig").splitlines()[0].startswith("期間 (period),コード (code),相談件数")
    )
    timing_json = (await get(client, supervisor, "/v1/statistics/tables/first_answer")).json()
    assert len(timing_json["rows"]) == 12
    assert_problem(
        await get(client, supervisor, "/v1/statistics/tables/nothing"), 404, "statistics_table_not_found"
    )
    # The request outcomes, as the council gets them: suppressed like the rest, X where withheld.
    council = await people.create(Role.council)
    outcomes = (await get(client, council, "/v1/statistics/tables/request_outcome")).json()
    as_csv = await get(client, council, "/v1/statistics/tables/request_outcome", format="csv")
    lines = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"), newline="")))
    assert lines[0][0] == "削除等依頼の結果 (request outcomes)" and outcomes["suppressed"] is True
    for r in outcomes["rows"]:
        line = next(x for x in lines if x[1] == r["key"])
        assert line[2:] == [("X" if v is None else str(v)) for v in [*r["cells"], r["total"]]]
        assert all(v is None or v == 0 or v >= 5 for v in [*r["cells"], r["total"]])
    assert_problem(await get(client, supervisor, "/v1/statistics/tables/channel", format="xlsx"), 422)


async def test_charts_as_png_and_svg_with_japanese_labels(client, people, data) -> None:  # type: ignore[no-untyped-def]
    supervisor = await people.create(Role.supervisor)
    for chart in ("monthly_trend", "categories", "platform_kinds", "channels"):
        png = await get(client, supervisor, f"/v1/statistics/charts/{chart}")
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(png.content))
        assert image.size == (800, 450)
        assert len(set(image.convert("L").get_flattened_data())) > 10  # drawn, not blank
        svg = await client.get(
            f"/v1/statistics/charts/{chart}",
            headers={**supervisor.headers, "Accept": "image/svg+xml"},
            params=YEAR,
        )
        assert svg.headers["content-type"] == "image/svg+xml"
        text = svg.content.decode("utf-8")
        assert text.lstrip().startswith("<?xml") and "<svg" in text
        # Text is embedded as glyph outlines; matplotlib keeps each string as a comment beside its glyphs.
        assert "<text" not in text and f"{FY}年度" in text
    trend = (await get(client, supervisor, "/v1/statistics/charts/monthly_trend", format="svg")).text
    assert "2025年4月" in trend and "相談件数(件)" in trend
    kinds = (await get(client, supervisor, "/v1/statistics/charts/platform_kinds", format="svg")).text
    assert "SNS" in kinds and "匿名掲示板" in kinds
    assert_problem(
        await get(client, supervisor, "/v1/statistics/charts/pie"), 404, "statistics_chart_not_found"
    )


def numbers(line: str) -> list[str]:
    return re.findall(r"(?<![\d.])(?:\d+(?:\.\d+)?|X)(?![\d.])", line)


async def test_the_yearly_report_pdf_carries_the_api_figures(client, people, data) -> None:  # type: ignore[no-untyped-def]
    council = await people.create(Role.council)
    response = await get(client, council, "/v1/statistics/report")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    body = (await get(client, council, "/v1/statistics")).json()
    pages = pdf_text(response.content)
    images = pdf_pages(response.content, dpi=30)
    # A cover, one page per table (a long one may run over), the time to first answer, four charts.
    assert len(pages) == len(images) >= 1 + len(body["tables"]) + 1 + 4
    assert f"{FY}年度" in pages[0] and "相談統計" in pages[0] and "秘匿" in pages[0]
    assert f"相談件数:{table(body, 'channel')['total']}件" in pages[0].replace("\r", "").replace("\n", "")
    titles = [f"{t['label_ja']} ({t['label_en']})" for t in body["tables"]] + ["初回回答までの時間"]
    starts = [next(k for k, p in enumerate(pages) if title in p) for title in titles]
    for n, t in enumerate(body["tables"]):
        page = "\n".join(pages[starts[n] : starts[n + 1]])  # a long table runs over several pages
        flat = [re.sub(r"\s+", " ", line) for line in page.splitlines()]
        # Each row's figures appear in the page, in order, exactly as the JSON has them (X when withheld).
        figures = " ".join(numbers(" ".join(flat)))
        for r in t["rows"]:
            expected = " ".join("X" if v is None else str(v) for v in [*r["cells"], r["total"]])
            assert expected in figures, (t["code"], r["key"], expected)
        totals = " ".join("X" if v is None else str(v) for v in [*t["column_totals"], t["total"]])
        assert totals in figures, t["code"]
    timing = next(p for p in pages if "初回回答までの時間" in p)
    for r in body["first_answer"]["rows"]:
        if r["median_hours"] is not None:
            assert str(r["median_hours"]) in timing
    # The chart pages are pictures (no text layer): rendered, they are not blank.
    for image in images[-4:]:
        assert len(set(image.convert("L").get_flattened_data())) > 10


async def test_only_supervisors_and_the_council(client, people, data) -> None:  # type: ignore[no-untyped-def]
    consultant = await people.create(Role.consultant)
    consulter = await people.create()
    await open_consultation(client, consulter)
    for who in (consultant, consulter):
        for path in ("/v1/statistics", "/v1/statistics/tables/channel", "/v1/statistics/report"):
            assert_problem(await get(client, who, path), 403, "role_not_allowed")
    assert_problem(await client.get("/v1/statistics"), 401)
    supervisor = await people.create(Role.supervisor)
    assert_problem(await get(client, supervisor, "/v1/statistics", fiscal_year=1999), 422)
    assert_problem(await get(client, supervisor, "/v1/statistics", granularity="week"), 422)
    paths = (
        "/v1/statistics",
        "/v1/statistics/tables/channel",
        "/v1/statistics/charts/channels",
        "/v1/statistics/report",
    )
    for path in paths:
        assert_problem(await get(client, supervisor, path, fiscal_year=2101), 422, "validation_failed")
        assert_problem(await get(client, supervisor, path, year=2025), 422, "unknown_query_parameter")


async def test_the_council_cannot_difference_first_answer_counts_across_granularities(
    client, people, data
) -> None:  # type: ignore[no-untyped-def]
    """The attack: a month's count withheld in the count tables, recovered as the quarter's first-answer count
    minus its other months (or consultations minus answered within one bucket). Suppressed output carries no
    first-answer counts at any granularity; shares and durations over enough answers stay."""
    council = await people.create(Role.council)
    supervisor = await people.create(Role.supervisor)
    for granularity in ("month", "quarter", "year"):
        rows = (await get(client, council, "/v1/statistics", granularity=granularity)).json()["first_answer"][
            "rows"
        ]
        assert rows
        for r in rows:
            assert r["consultations"] is None and r["answered"] is None and r["within_target"] is None
        full = (await get(client, supervisor, "/v1/statistics", granularity=granularity)).json()
        assert any(r["consultations"] for r in full["first_answer"]["rows"])  # supervisors still see them
        assert any(r["median_hours"] is not None for r in rows) or granularity == "month"
