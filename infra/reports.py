"""The statistics as files: CSV per table (Excel in Japan: UTF-8 with BOM, CRLF), charts (matplotlib, Agg, the
one Japanese font embedded as glyph outlines) and the yearly report (fpdf2). Everything drawn here takes a
`Statistics` the domain already built and, where asked, protected: no figure is computed here that the JSON
does not carry, so the files and the API never disagree."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

from domain.statistics import Statistics, Table, TimingRow
from infra.fonts import FONT_FAMILY, japanese_font_path

if TYPE_CHECKING:
    from matplotlib.font_manager import FontProperties

# fontTools (fpdf2's font subsetting) reports every table it prunes at INFO: not worth a log line each.
logging.getLogger("fontTools").setLevel(logging.WARNING)

WITHHELD = "X"  # as in the official statistics of Japan (秘匿)
CHARTS = ("monthly_trend", "categories", "platform_kinds", "channels")
CHART_TITLES = {
    "monthly_trend": ("月別の相談件数", "Consultations per month"),
    "categories": ("相談分類別の件数", "Consultations by category group"),
    "platform_kinds": ("サービスの種類別の件数", "Consultations by platform kind"),
    "channels": ("相談経路の割合", "Share of channels"),
}


def _show(value: int | float | None) -> str:
    return WITHHELD if value is None else str(value)


# -- CSV ---------------------------------------------------------------------------------------------------


def _csv(rows: Sequence[Sequence[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(rows)
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def table_csv(table: Table) -> bytes:
    """One table: a header `日本語 (english)`, one line per value, the totals last; withheld cells are X."""
    header = [
        f"{table.label_ja} ({table.label_en})",
        "コード (code)",
        *(f"{c.label_ja} ({c.label_en})" for c in table.columns),
        "合計 (total)",
    ]
    lines = [header]
    for r in table.rows:
        lines.append([r.label_ja, r.key, *(_show(v) for v in r.cells), _show(r.total)])
    lines.append(["合計 (total)", "", *(_show(v) for v in table.column_totals), _show(table.total)])
    return _csv(lines)


TIMING_HEADER = [
    "期間 (period)",
    "コード (code)",
    "相談件数 (consultations)",
    "回答済み (answered)",
    "目標内に回答 (answered within target)",
    "目標内の割合 (share within target)",
    "中央値・時間 (median hours)",
    "90パーセンタイル・時間 (90th percentile hours)",
]


def _timing_line(r: TimingRow) -> list[str]:
    return [
        r.label_ja,
        r.key,
        _show(r.consultations),
        _show(r.answered),
        _show(r.within_target),
        _show(r.within_target_share),
        _show(r.median_hours),
        _show(r.p90_hours),
    ]


def timing_csv(rows: Sequence[TimingRow]) -> bytes:
    return _csv([TIMING_HEADER, *(_timing_line(r) for r in rows)])


# -- charts ------------------------------------------------------------------------------------------------


# matplotlib is imported where a chart is drawn: it is half a second of every process's start (each API
# worker, the worker, every CLI command), and few of them ever draw one.
@cache
def _font() -> FontProperties:
    from matplotlib.font_manager import FontProperties

    return FontProperties(fname=str(japanese_font_path()))


def _series(table: Table) -> tuple[list[str], list[int]]:
    """A table's rows with their yearly totals (withheld as 0 and marked in the label), largest first."""
    pairs = [(r.label_ja + ("(秘匿)" if r.total is None else ""), r.total or 0) for r in table.rows]
    pairs = [p for p in pairs if p[1] > 0 or p[0].endswith("(秘匿)")]
    pairs.sort(key=lambda p: -p[1])
    return [p[0] for p in pairs], [p[1] for p in pairs]


def chart(stats: Statistics, code: str, fmt: str) -> bytes:
    """One chart of the yearly report as PNG or SVG. Text is drawn with IPAexGothic; the SVG carries it as
    glyph outlines (the font embedded), so it looks the same without the font installed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    font = _font()
    fig = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    title_ja, title_en = CHART_TITLES[code]
    suffix = "(少数のため一部秘匿)" if stats.suppressed else ""
    ax.set_title(f"{stats.fiscal_year}年度 {title_ja}{suffix}", fontproperties=font)
    if code == "monthly_trend":
        t = stats.table("channel")
        labels = [c.label_ja for c in t.columns]
        values = [v or 0 for v in t.column_totals]
        ax.plot(range(len(values)), values, marker="o", color="#1f5fa8")
        for x, v in enumerate(t.column_totals):
            ax.annotate(
                _show(v),
                (x, v or 0),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontproperties=font,
            )
        ax.set_xticks(range(len(labels)), labels, fontproperties=font, rotation=45, ha="right")
        ax.set_ylabel("相談件数(件)", fontproperties=font)
        ax.set_ylim(bottom=0)
    elif code in ("categories", "platform_kinds"):
        names, values = _series(stats.table("category_group" if code == "categories" else "platform_kind"))
        ax.barh(range(len(values)), values, color="#2e8b57")
        ax.set_yticks(range(len(names)), names, fontproperties=font)
        ax.invert_yaxis()
        for y, v in enumerate(values):
            ax.annotate(str(v), (v, y), textcoords="offset points", xytext=(4, -4), fontproperties=font)
        ax.set_xlabel("件数(延べ)", fontproperties=font)
    elif code == "channels":
        names, values = _series(stats.table("channel"))
        shown = [(n, v) for n, v in zip(names, values, strict=True) if v > 0]
        if shown:
            ax.pie(
                [v for _, v in shown],
                labels=[f"{n} {v}件" for n, v in shown],
                textprops={"fontproperties": font},
                autopct="%1.0f%%",
                startangle=90,
                counterclock=False,
            )
        else:
            ax.text(0.5, 0.5, "該当なし", ha="center", fontproperties=font)
        ax.set_aspect("equal")
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format=fmt, metadata={"Title": f"{title_ja} ({title_en})"} if fmt == "svg" else None)
    return out.getvalue()


# -- the yearly report -------------------------------------------------------------------------------------


def yearly_report(stats: Statistics) -> bytes:
    """The yearly report: a cover with the totals, one page per table, the time to first answer, the charts."""
    from fpdf import FPDF

    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_font(FONT_FAMILY, fname=str(japanese_font_path()))
    pdf.set_title(f"{stats.fiscal_year}年度 相談統計")
    pdf.set_creator("madoguchi")

    pdf.add_page()
    pdf.set_font(FONT_FAMILY, size=20)
    pdf.cell(
        0, 14, f"{stats.fiscal_year}年度 違法・有害情報相談センター 相談統計", new_x="LMARGIN", new_y="NEXT"
    )
    pdf.set_font(FONT_FAMILY, size=11)
    period = f"{stats.start.date().isoformat()} 〜 {stats.end.date().isoformat()}(日本時間、終了日を含まない)"
    pdf.cell(0, 8, f"対象期間:{period}", new_x="LMARGIN", new_y="NEXT")
    channel = stats.table("channel")
    pdf.cell(0, 8, f"相談件数:{_show(channel.total)}件", new_x="LMARGIN", new_y="NEXT")
    if stats.suppressed:
        pdf.multi_cell(
            0,
            7,
            f"個人が特定されることのないよう、{stats.threshold}件未満の数と、そこから逆算できる数は「{WITHHELD}」で秘匿しています。",
            new_x="LMARGIN",
            new_y="NEXT",
        )
    pdf.multi_cell(0, 7, stats.target_ja, new_x="LMARGIN", new_y="NEXT")

    for table in stats.tables:
        pdf.add_page()
        pdf.set_font(FONT_FAMILY, size=14)
        pdf.cell(0, 10, f"{table.label_ja} ({table.label_en})", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(FONT_FAMILY, size=8)
        pdf.multi_cell(0, 5, table.note_ja, new_x="LMARGIN", new_y="NEXT")
        header = [table.label_ja, *(c.label_ja for c in table.columns), "合計"]
        body = [[r.label_ja, *(_show(v) for v in r.cells), _show(r.total)] for r in table.rows]
        body.append(["合計", *(_show(v) for v in table.column_totals), _show(table.total)])
        _grid(pdf, header, body)

    pdf.add_page()
    pdf.set_font(FONT_FAMILY, size=14)
    pdf.cell(0, 10, "初回回答までの時間 (time to first answer)", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, size=8)
    header = ["期間", "相談件数", "回答済み", "目標内", "目標内の割合", "中央値(時間)", "90%点(時間)"]
    _grid(pdf, header, [[_timing_line(r)[0], *_timing_line(r)[2:]] for r in stats.first_answer], first=60)

    for code in CHARTS:
        pdf.add_page()
        pdf.image(io.BytesIO(chart(stats, code, "png")), x=20, y=15, w=250)
    return bytes(pdf.output())


def _grid(pdf, header: list[str], body: list[list[str]], first: float = 58) -> None:
    width = pdf.w - pdf.l_margin - pdf.r_margin
    rest = (width - first) / max(1, len(header) - 1)
    widths = [first, *([rest] * (len(header) - 1))]
    pdf.set_fill_color(230, 236, 245)
    for text, w in zip(header, widths, strict=True):
        pdf.cell(w, 6, _fit(pdf, text, w), border=1, fill=True, align="C")
    pdf.ln()
    for line in body:
        if pdf.get_y() > pdf.h - 20:
            pdf.add_page()
        for k, (text, w) in enumerate(zip(line, widths, strict=True)):
            pdf.cell(w, 5.5, _fit(pdf, text, w), border=1, align="L" if k == 0 else "R")
        pdf.ln()


def _fit(pdf, text: str, width: float) -> str:
    """Shortens a label that does not fit its cell (numbers always fit)."""
    if pdf.get_string_width(text) <= width - 1:
        return text
    while text and pdf.get_string_width(text + "…") > width - 1:
        text = text[:-1]
    return text + "…"
