"""The framework ceiling for tests/bench/bench_me.py: bare FastAPI, one `async def` endpoint, constant JSON.

Served as `uvicorn --app-dir tests/bench bare_app:app` with the same flags as the real app.
Not a pytest module.
"""

from __future__ import annotations

from fastapi import FastAPI

ME = {
    "id": "0b8f4c1e-9a53-4c55-8f7e-1c2d3e4f5a6b",
    "email": "bench@example.jp",
    "display_name": "bench",
    "locale": "ja",
    "role": "consulter",
    "email_verified": True,
    "totp_enabled": False,
    "created_at": "2026-11-29T10:00:00Z",
}

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/v1/me")
async def me() -> dict[str, object]:
    return ME
