"""The dependency rule of DESIGN.md §1: domain/ knows only the standard library; infra/ never imports api/."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_domain_imports_only_the_standard_library_and_itself() -> None:
    offenders = {
        path: sorted(n for n in names if n != "domain" and n not in sys.stdlib_module_names)
        for path, names in imported_modules("domain").items()
    }
    assert {p: n for p, n in offenders.items() if n} == {}


def test_infra_never_imports_api() -> None:
    offenders = {path for path, names in imported_modules("infra").items() if "api" in names}
    assert offenders == set()


def test_only_the_token_module_imports_jose() -> None:
    users = {
        path
        for package in ("api", "domain", "infra")
        for path, names in imported_modules(package).items()
        if "jose" in names
    }
    assert users == {"infra/tokens.py"}


def test_the_checker_sees_a_forbidden_import(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "domain").mkdir()
    (tmp_path / "domain" / "bad.py").write_text("from fastapi import FastAPI\nimport sqlalchemy.orm\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert imported_modules("domain") == {"domain/bad.py": {"fastapi", "sqlalchemy"}}
