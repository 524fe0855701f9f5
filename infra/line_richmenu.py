"""The rich menu (the buttons under the chat): read and check domain/knowledge/line_rich_menu.yaml, draw its
image, and deploy it through the Messaging API (`madoguchi line-rich-menu`)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import yaml

from domain import line as say
from infra.fonts import japanese_font_path
from infra.line_sdk import LineApi

RICH_MENU_FILE = Path(__file__).resolve().parent.parent / "domain" / "knowledge" / "line_rich_menu.yaml"
RICH_MENU_SIZES = {(2500, 1686), (2500, 843), (1200, 810), (1200, 405), (800, 540), (800, 270)}


def load_rich_menu(path: Path = RICH_MENU_FILE) -> dict[str, Any]:
    """Read and check the rich-menu data file (sizes and bounds as the Messaging API requires)."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(spec, dict):
        raise ValueError("rich menu: not a mapping")
    size = spec.get("size") or {}
    dimensions = (size.get("width"), size.get("height"))
    if dimensions not in RICH_MENU_SIZES:
        raise ValueError(f"rich menu: size {dimensions[0]}x{dimensions[1]} is not one LINE accepts")
    width, height = dimensions
    if not 1 <= len(str(spec.get("chat_bar_text", ""))) <= 14:
        raise ValueError("rich menu: chat_bar_text must be 1-14 characters")
    areas = spec.get("areas") or []
    if not 1 <= len(areas) <= 20:
        raise ValueError("rich menu: 1-20 areas")
    for n, area in enumerate(areas):
        b = area.get("bounds") or {}
        x, y, w, h = (int(b.get(k, -1)) for k in ("x", "y", "width", "height"))
        if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > width or y + h > height:
            raise ValueError(f"rich menu: area {n} lies outside the menu")
        action = area.get("action") or {}
        if action.get("type") not in ("postback", "uri", "message"):
            raise ValueError(f"rich menu: area {n} has an unsupported action")
        if (
            action.get("type") == "postback"
            and say.decode_postback(str(action.get("data", ""))).kind == "unknown"
        ):
            raise ValueError(f"rich menu: area {n} posts data the bot does not understand")
        if not area.get("label_ja") or not area.get("label_en"):
            raise ValueError(f"rich menu: area {n} needs label_ja and label_en")
    return spec


def rich_menu_request(spec: dict[str, Any], public_url: str) -> dict[str, Any]:
    """The Messaging API body: `{public_url}` in a URI is the homepage."""
    areas = []
    for area in spec["areas"]:
        action = {k: v for k, v in area["action"].items() if k != "display_text"}
        if "display_text" in area["action"]:
            action["displayText"] = area["action"]["display_text"]
        if action["type"] == "uri":
            action["uri"] = str(action["uri"]).replace("{public_url}", public_url.rstrip("/"))
        action.setdefault("label", str(area["label_ja"])[: say.LABEL_MAX])
        areas.append({"bounds": area["bounds"], "action": action})
    return {
        "size": spec["size"],
        "selected": bool(spec.get("selected", True)),
        "name": str(spec.get("name", "madoguchi"))[:300],
        "chatBarText": spec["chat_bar_text"],
        "areas": areas,
    }


def rich_menu_image(spec: dict[str, Any], font_path: str | None = None) -> bytes:
    """A plain PNG of the menu's size: one tile per area with its Japanese label, in the project's font (or the
    TrueType/OpenType font an operator passes)."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = spec["size"]["width"], spec["size"]["height"]
    image = Image.new("RGB", (width, height), (246, 248, 250))
    draw = ImageDraw.Draw(image)
    font_file = str(font_path or japanese_font_path())

    def font_for(label: str, room: float) -> Any:
        size = max(16, height // 12)
        while True:
            font = ImageFont.truetype(font_file, size)
            if size <= 16 or draw.textlength(label, font=font) <= room:
                return font
            size -= 4

    palette = [(0, 120, 90), (20, 90, 160), (150, 90, 20), (120, 40, 120), (40, 110, 40), (160, 40, 60)]
    for n, area in enumerate(spec["areas"]):
        b = area["bounds"]
        box = (b["x"], b["y"], b["x"] + b["width"] - 1, b["y"] + b["height"] - 1)
        draw.rectangle(box, fill=palette[n % len(palette)], outline=(255, 255, 255), width=8)
        label = str(area["label_ja"])
        draw.text(
            (b["x"] + b["width"] / 2, b["y"] + b["height"] / 2),
            label,
            fill=(255, 255, 255),
            font=font_for(label, b["width"] * 0.85),
            anchor="mm",
        )
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    data = out.getvalue()
    if len(data) > 1_000_000:
        raise ValueError("rich menu image is larger than LINE's 1 MB limit")
    return data


async def deploy_rich_menu(
    api: LineApi, spec: dict[str, Any], public_url: str, font_path: str | None = None
) -> str:
    """Create the menu, upload its image, make it the default for every user; returns the rich menu id."""
    rich_menu_id = await api.create_rich_menu(rich_menu_request(spec, public_url))
    await api.set_rich_menu_image(rich_menu_id, rich_menu_image(spec, font_path))
    await api.set_default_rich_menu(rich_menu_id)
    return rich_menu_id
