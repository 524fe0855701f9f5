"""Load the reference knowledge shipped as YAML inside the `domain.knowledge` package."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib.resources import files
from typing import Annotated, Any

import yaml
from pydantic import Field, ValidationError

from domain.errors import ProblemEntry
from domain.knowledge_model import Knowledge, KnowledgeError, validate
from infra.knowledge_schema import STEMS, Text, knowledge_from_raw
from infra.yaml_data import Schema, load_yaml, schema_problems

PACKAGE = "domain.knowledge"
# STEMS has a fixed order so the version hash does not depend on directory listing order.
__all__ = ["PACKAGE", "STEMS", "build", "knowledge_version", "load_knowledge", "parse", "read_files"]


def read_files() -> dict[str, bytes]:
    """Raw bytes of each knowledge file, keyed by stem."""
    root = files(PACKAGE)
    out: dict[str, bytes] = {}
    for stem in STEMS:
        resource = root.joinpath(f"{stem}.yaml")
        if not resource.is_file():
            raise KnowledgeError([f"missing knowledge file {stem}.yaml"])
        out[stem] = resource.read_bytes()
    return out


def parse(blobs: dict[str, bytes]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for stem, blob in blobs.items():
        try:
            doc = load_yaml(blob.decode("utf-8"))
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            raise KnowledgeError([f"{stem}.yaml: {exc}"]) from exc
        if not isinstance(doc, dict):
            raise KnowledgeError([f"{stem}.yaml must be a mapping"])
        raw[stem] = doc
    return raw


def build(blobs: dict[str, bytes]) -> Knowledge:
    knowledge = knowledge_from_raw(parse(blobs))
    validate(knowledge)
    return knowledge


@lru_cache(maxsize=1)
def load_knowledge() -> Knowledge:
    """The validated knowledge, read once per process (call `load_knowledge.cache_clear()` to reload)."""
    return build(read_files())


@lru_cache(maxsize=1)
def knowledge_version() -> str:
    """SHA-256 over the files' names and bytes: changes whenever any knowledge file changes."""
    digest = hashlib.sha256()
    for stem, blob in read_files().items():
        digest.update(stem.encode("ascii") + b"\0" + len(blob).to_bytes(8, "big") + blob)
    return digest.hexdigest()


class _ProblemDoc(Schema):
    status: Annotated[int, Field(ge=400, le=599)]
    title_ja: Text
    title_en: Text
    meaning: Text


class _ProblemsDoc(Schema):
    version: Text
    codes: dict[str, _ProblemDoc]


def problem_catalogue_from_text(text: str) -> dict[str, ProblemEntry]:
    """The error-code catalogue, validated: every entry has an HTTP error status and non-empty texts."""
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        raise KnowledgeError([f"problems.yaml: {exc}"]) from exc
    try:
        doc = _ProblemsDoc.model_validate(raw)
    except ValidationError as exc:
        raise KnowledgeError(schema_problems(exc, "problems.yaml", raw)) from None
    return {
        code: ProblemEntry(code, e.status, e.title_ja, e.title_en, e.meaning) for code, e in doc.codes.items()
    }


@lru_cache(maxsize=1)
def load_problem_catalogue() -> dict[str, ProblemEntry]:
    """The packaged error-code catalogue (domain/knowledge/problems.yaml), read once per process."""
    return problem_catalogue_from_text(files(PACKAGE).joinpath("problems.yaml").read_text(encoding="utf-8"))
