"""The manual, the answer templates and the review rules, read from domain/knowledge/."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from importlib import resources

from domain.answers import ReviewRule, review_rules_from_raw
from domain.quality import ManualEntry
from infra.yaml_data import load_yaml

PLACEHOLDERS = frozenset({"consulter_name", "platform", "url", "desk_name", "desk_phone", "deadline"})


def _read(name: str) -> dict:
    return load_yaml(resources.files("domain.knowledge").joinpath(name).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def load_manual() -> tuple[tuple[ManualEntry, ...], tuple[ManualEntry, ...]]:
    raw = _read("manual.yaml")
    epoch = datetime(2026, 11, 1, tzinfo=UTC)
    sections = tuple(
        ManualEntry("section", s["code"], 1, s["title_ja"], s["title_en"], s["body_ja"], epoch, None)
        for s in raw["sections"]
    )
    codes = {s.code for s in sections}
    templates = []
    for t in raw["templates"]:
        used = set(re.findall(r"{(\w+)}", t["body_ja"]))
        if not used <= PLACEHOLDERS or not set(t.get("sections", [])) <= codes:
            raise ValueError(f"manual template {t['code']}: unknown placeholder or section")
        templates.append(
            ManualEntry(
                "template",
                t["code"],
                1,
                t["title_ja"],
                t["title_en"],
                t["body_ja"],
                epoch,
                None,
                sections=tuple(t.get("sections", [])),
            )
        )
    if len(codes) != len(sections) or len({t.code for t in templates}) != len(templates):
        raise ValueError("manual: duplicate codes")
    return sections, tuple(templates)


@functools.lru_cache(maxsize=1)
def load_review_rules() -> tuple[ReviewRule, ...]:
    return review_rules_from_raw(_read("review_rules.yaml"))
