"""The bundled Japanese font: PDFs carry selectable Japanese text and the LINE rich menu has no missing glyphs."""

from __future__ import annotations

import io

from fontTools.ttLib import TTFont
from fpdf import FPDF
from PIL import Image

from infra.fonts import FONT_FAMILY, japanese_font_path
from infra.line_richmenu import load_rich_menu, rich_menu_image
from tests.pdf_tools import pdf_pages, pdf_text


def test_a_pdf_drawn_with_the_font_has_selectable_japanese_text() -> None:
    pdf = FPDF(format="A4")
    pdf.add_font(FONT_FAMILY, fname=str(japanese_font_path()))
    pdf.add_page()
    pdf.set_font(FONT_FAMILY, size=12)
    pdf.cell(text="侵害情報の通知書兼送信防止措置依頼書")
    data = bytes(pdf.output())

    assert "侵害情報の通知書兼送信防止措置依頼書" in pdf_text(data)[0].replace(" ", "")
    (page,) = pdf_pages(data)
    assert page.size[0] < page.size[1]  # A4 portrait
    assert page.getextrema() != ((255, 255), (255, 255), (255, 255))  # something was drawn


def test_every_rich_menu_label_is_in_the_font() -> None:
    spec = load_rich_menu()
    glyphs = TTFont(str(japanese_font_path())).getBestCmap()
    missing = {ch for area in spec["areas"] for ch in str(area["label_ja"]) if ord(ch) not in glyphs}
    assert not missing

    image = Image.open(io.BytesIO(rich_menu_image(spec)))
    assert (image.width, image.height) == (spec["size"]["width"], spec["size"]["height"])
    # each tile holds its label: white text pixels on the tile colour
    for area in spec["areas"]:
        b = area["bounds"]
        tile = image.crop((b["x"] + 20, b["y"] + 20, b["x"] + b["width"] - 20, b["y"] + b["height"] - 20))
        assert any(pixel == (255, 255, 255) for pixel in tile.get_flattened_data())
