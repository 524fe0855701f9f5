"""Load the reference knowledge shipped as YAML inside the `domain.knowledge` package."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib.resources import files
from typing import Any

import yaml

from domain.knowledge_model import Knowledge, KnowledgeError, validate
from infra.yaml_data import load_yaml

PACKAGE = "domain.knowledge"
# Fixed order so the version hash does not depend on directory listing order.
STEMS = ("categories", "intake", "desks", "platforms", "chart", "guides")


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
            raise KnowledgeError([f"{stem}.yaml: top level must be a mapping"])
        raw[stem] = doc
    return raw


def build(blobs: dict[str, bytes]) -> Knowledge:
    knowledge = Knowledge.from_raw(parse(blobs))
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
