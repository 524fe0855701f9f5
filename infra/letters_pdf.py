"""Letters as PDF: A4, IPAexGothic embedded (infra/fonts.py), the fields a provider expects in the order of the
standard form. Text is real text (selectable, searchable), never an image of text."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal

from fpdf import FPDF
from fpdf.enums import WrapMode, XPos, YPos

from domain.letters import JST, LetterContent, LetterForm, LetterNotice
from infra.fonts import FONT_FAMILY, japanese_font_path

# fontTools logs the glyphs it keeps when fpdf2 subsets the font (the set of characters in the letter) and
# fpdf2 warns with the characters the font lacks: letters are never logged.
logging.getLogger("fontTools").setLevel(logging.WARNING)
logging.getLogger("fpdf").setLevel(logging.ERROR)

MARGIN = 18.0
LINE = 6.0


class _LetterPdf(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self._footer_text = footer_text

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font(FONT_FAMILY, size=7.5)
        self.set_text_color(90, 90, 90)
        self.multi_cell(0, 3.6, self._footer_text, wrapmode=WrapMode.CHAR, align="L")
        self.set_text_color(0, 0, 0)


def _para(
    pdf: FPDF, text: str, size: float = 10.5, h: float = LINE, border: Literal[0, 1] = 0, align: str = "L"
) -> None:
    pdf.set_font(FONT_FAMILY, size=size)
    pdf.multi_cell(
        0, h, text, border=border, wrapmode=WrapMode.CHAR, align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )


def _label(pdf: FPDF, text: str) -> None:
    pdf.set_font(FONT_FAMILY, size=10)
    pdf.set_fill_color(232, 232, 232)
    pdf.multi_cell(
        0, LINE, text, border=1, fill=True, wrapmode=WrapMode.CHAR, new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )


def field_values(form: LetterForm, content: LetterContent) -> list[tuple[str, str]]:
    """(label, value) in the order of the form's 記 table, as printed."""
    rows = []
    for f in form.fields:
        if f.code == "place":
            value = "\n".join(
                f"{n}. {i.url or '(URL未記入)'}\n    投稿日時: {i.posted_at_jst or '不明'}"
                for n, i in enumerate(content.items, 1)
            )
        elif f.code == "information":
            value = "\n".join(
                f"{n}. {i.excerpt}" if i.excerpt else f"{n}. (抜粋なし)"
                for n, i in enumerate(content.items, 1)
            )
        elif f.kind == "choice":
            chosen = content.choices.get(f.code, ())
            if f.code == "right":
                value = "、".join(chosen) or "(未選択)"
            else:
                value = "\n".join(f"{'■' if c in chosen else '□'} {c}" for c in f.choices)
        else:
            value = (content.texts.get(f.code) or "").strip() or "(未記入)"
        rows.append((f.label_ja, value))
    return rows


def render_letter_pdf(
    form: LetterForm,
    content: LetterContent,
    notice: LetterNotice,
    *,
    final: bool,
    dated: datetime,
    version_number: int,
) -> bytes:
    footer = (
        f"書式の出典: {form.form_url}({form.source_url}、確認日 {form.checked.isoformat()})"
        f" / 版 {version_number}"
    )
    pdf = _LetterPdf(footer)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_font(FONT_FAMILY, fname=str(japanese_font_path()))
    pdf.set_title(f"{form.title_ja}({form.subtitle_ja})")
    pdf.set_lang("ja")
    pdf.set_creation_date(dated)
    pdf.add_page()
    if not final:
        pdf.set_text_color(180, 0, 0)
        _para(pdf, notice.draft_ja, size=10, align="R")
        pdf.set_text_color(0, 0, 0)
    local = dated.astimezone(JST)
    _para(pdf, f"{local.year}年{local.month}月{local.day}日", align="R")
    pdf.ln(2)
    _para(pdf, form.title_ja, size=15, h=8, align="C")
    _para(pdf, f"({form.subtitle_ja})", size=10, align="C")
    pdf.ln(4)
    _para(pdf, f"{content.recipient or '(宛先未記入)'} 御中", size=12, h=7)
    pdf.ln(2)
    _para(pdf, "[権利を侵害されたと主張する者]", size=10)
    s = content.sender
    for label, value in (("住所", s.address), ("氏名", s.name), ("連絡先", s.contact)):
        if value:
            _para(pdf, f"{label}: {value}", size=10)
    if not (s.name and s.address):
        pdf.set_text_color(90, 90, 90)
        _para(pdf, notice.sender_omitted_ja, size=9)
        pdf.set_text_color(0, 0, 0)
    pdf.ln(3)
    _para(pdf, form.opening_ja)
    pdf.ln(2)
    _para(pdf, "記", size=11, align="C")
    for label, value in field_values(form, content):
        _label(pdf, label)
        _para(pdf, value, size=10, border=1)
    pdf.ln(3)
    _para(pdf, form.declaration_ja, size=10)
    _para(pdf, "以上", align="R")
    return bytes(pdf.output())
