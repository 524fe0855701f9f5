"""Linked tables over HTTP (issue 18): a person in a small category of a large group cannot be recognised as
the group's total minus its other categories (nor a small platform as its kind's total minus the others), in
the JSON, the CSV, the charts or the yearly report — the council's output is one protected system."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime

import pytest

from domain.actors import Role
from domain.calendar import JST
from domain.disclosure import protect
from infra.knowledge import load_knowledge
from tests.disclosure_check import determined, json_rows, linked_equations, table_equations
from tests.pdf_tools import pdf_text
from tests.statistics_data import Case, jst, seed

FY = 2025
YEAR = {"fiscal_year": FY}
AFTER = datetime(FY + 1, 12, 2, 10, tzinfo=JST)
K = load_knowledge()
PARENT = {
    "category": {c.code: (c.parent or c.code) for c in K.categories},
    "platform": {p.code: p.kind for p in K.platforms},
}
PAIRS = (("category_group", "category"), ("platform_kind", "platform"))


@pytest.fixture
async def data(container, clock):  # type: ignore[no-untyped-def]
    clock.set(AFTER)  # the fiscal year has ended, whatever instant the suite is pinned to
    cases = []
    for k in range(12):
        y, m = FY + (3 + k) // 12, (3 + k) % 12 + 1
        cases += [
            Case(jst(y, m, 10), owner=n, categories=["RIGHTS.DEFAMATION"], platforms=["five_ch"])
            for n in range(10)
        ]
        cases += [
            Case(jst(y, m, 11), owner=10 + n, categories=["YOUTH.BULLYING"], platforms=["youtube"])
            for n in range(6)
        ]
    # The one person: privacy (a rights category) on a small anonymous board, in April.
    cases.append(Case(jst(FY, 4, 9), owner=99, categories=["RIGHTS.PRIVACY_ID"], platforms=["hostlove"]))
    await seed(container, cases)
    return cases


def system(tables: dict[str, dict]) -> tuple[dict, list]:  # type: ignore[type-arg]
    shown: dict = {}  # type: ignore[type-arg]
    equations: list = []  # type: ignore[type-arg]
    for group, leaf in PAIRS:
        for name in (group, leaf):
            rows, totals = tables[name]
            s, e = table_equations(name, rows, totals)
            shown.update(s)
            equations += e
        groups, leaves = tables[group][0], tables[leaf][0]
        width = len(tables[group][1])
        equations += linked_equations(group, leaf, PARENT[leaf], list(groups), list(leaves), width)
    return shown, equations


def from_csv(raw: bytes) -> tuple[dict[str, list[int | None]], list[int | None]]:
    lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    value = lambda text: None if text == "X" else int(text)  # noqa: E731
    rows = {line[1]: [value(v) for v in line[2:]] for line in lines[1:-1]}
    return rows, [value(v) for v in lines[-1][2:]]


async def test_a_person_in_a_small_leaf_of_a_large_group_cannot_be_recognised(client, people, data) -> None:  # type: ignore[no-untyped-def]
    council = await people.create(Role.council)
    supervisor = await people.create(Role.supervisor)
    get = lambda who, path, **p: client.get(path, headers=who.headers, params={**YEAR, **p})  # noqa: E731
    full = {t["code"]: t for t in (await get(supervisor, "/v1/statistics")).json()["tables"]}
    truth = {code: json_rows(full[code]) for pair in PAIRS for code in pair}
    assert truth["category"][0]["RIGHTS.PRIVACY_ID"][0] == 1 and truth["platform"][0]["hostlove"][0] == 1

    # The data set is the attack: each table protected on its own leaves the subtraction open.
    alone: dict = {}  # type: ignore[type-arg]
    for code, (rows, _) in truth.items():
        p = protect([line[:-1] for line in rows.values()])
        alone[code] = (
            {k: [*p.cells[i], p.row_totals[i]] for i, k in enumerate(rows)},
            [*p.column_totals, p.total],
        )
    leak = determined(*system(alone))
    assert ("category", "RIGHTS.PRIVACY_ID", 0) in leak and ("platform", "hostlove", 0) in leak

    # JSON: the council's tables, jointly, determine no withheld figure.
    body = (await get(council, "/v1/statistics")).json()
    published = {t["code"]: t for t in body["tables"]}
    as_json = {code: json_rows(published[code]) for pair in PAIRS for code in pair}
    assert as_json["category"][0]["RIGHTS.PRIVACY_ID"][0] is None
    assert as_json["platform"][0]["hostlove"][0] is None
    shown, equations = system(as_json)
    assert determined(shown, equations) == set()
    for code, (rows, _) in as_json.items():  # what is shown is true
        for key, line in rows.items():
            assert all(v is None or v == t for v, t in zip(line, truth[code][0][key], strict=True))

    # CSV: the same figures, so the same holds; read back from the files themselves.
    as_csv = {}
    for code in as_json:
        response = await get(council, f"/v1/statistics/tables/{code}", format="csv")
        as_csv[code] = from_csv(response.content)
    assert as_csv == as_json
    assert determined(*system(as_csv)) == set()

    # Charts: the bars are the published group totals, a withheld one marked, never a number of its own.
    for chart, code in (("categories", "category_group"), ("platform_kinds", "platform_kind")):
        svg = (await get(council, f"/v1/statistics/charts/{chart}", format="svg")).text
        comments = re.findall(r"<!-- (.*?) -->", svg)
        for r in published[code]["rows"]:
            if r["total"] is None:
                assert f"{r['label_ja']}(秘匿)" in comments
            elif r["total"]:
                assert r["label_ja"] in comments and str(r["total"]) in comments
        hidden_groups = [r for r in published[code]["rows"] if r["total"] is None]
        assert hidden_groups or any(
            line[-1] is None
            for line in as_json["category" if code == "category_group" else "platform"][0].values()
        )

    # The yearly report: every row of the four tables carries exactly the JSON's figures.
    pages = pdf_text((await get(council, "/v1/statistics/report")).content)
    text = " ".join(re.sub(r"\s+", " ", p) for p in pages)
    figures = " ".join(re.findall(r"(?<![\d.])(?:\d+(?:\.\d+)?|X)(?![\d.])", text))
    for code in as_json:
        for r in published[code]["rows"]:
            expected = " ".join("X" if v is None else str(v) for v in [*r["cells"], r["total"]])
            assert expected in figures, (code, r["key"])
