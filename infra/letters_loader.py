"""The letter forms and the web-form definitions, read from domain/knowledge/ and validated on load."""

from __future__ import annotations

import functools
from importlib import resources

from domain.knowledge_model import Knowledge
from domain.letters import LetterCatalogue, catalogue_from_raw
from infra.yaml_data import load_yaml


def _read(name: str) -> dict:
    return load_yaml(resources.files("domain.knowledge").joinpath(name).read_text(encoding="utf-8"))


def known_services(knowledge: Knowledge) -> set[str]:
    """Service codes of the platform reference data; a platform without services counts as one."""
    codes: set[str] = set()
    for p in knowledge.platforms:
        codes.update(s.code for s in p.services)
        if not p.services:
            codes.add(p.code)
    return codes


@functools.lru_cache(maxsize=1)
def _cached(services: frozenset[str]) -> LetterCatalogue:
    return catalogue_from_raw(_read("letter_forms.yaml"), _read("platform_forms.yaml"), set(services))


def load_letter_catalogue(knowledge: Knowledge) -> LetterCatalogue:
    return _cached(frozenset(known_services(knowledge)))
