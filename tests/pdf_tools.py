"""Reading generated PDFs the way a person would: rendered pages and the text a reader can select and copy.

PDFium (pypdfium2, from PyPI) is an independent renderer: what it shows is what a browser's viewer shows.
"""

from __future__ import annotations

import pypdfium2 as pdfium
from PIL import Image


def pdf_text(pdf: bytes) -> list[str]:
    """The selectable text of each page."""
    document = pdfium.PdfDocument(pdf)
    try:
        return [page.get_textpage().get_text_range() for page in document]
    finally:
        document.close()


def pdf_pages(pdf: bytes, dpi: int = 50) -> list[Image.Image]:
    """Every page rendered to an image (raises if the file cannot be rendered)."""
    document = pdfium.PdfDocument(pdf)
    try:
        return [page.render(scale=dpi / 72).to_pil().convert("RGB") for page in document]
    finally:
        document.close()
