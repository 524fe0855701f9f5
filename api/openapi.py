"""The committed contract: the schema as served, rendered deterministically."""

from __future__ import annotations

import json

from infra.settings import Environment, Settings


def render_openapi() -> str:
    from api.main import create_app

    app = create_app(Settings(env=Environment.development, docs_enabled=True, database_url="sqlite://"))
    return json.dumps(app.openapi(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def main() -> None:
    """`python -m api.openapi` rewrites openapi/openapi.json from the code."""
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"
    path.write_text(render_openapi(), encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
