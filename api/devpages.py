"""Development stand-ins for the my-page front end's link pages, so a mailed link works against a local
server (`./dev serve`). Production never has them: there MADOGUCHI_PUBLIC_URL is the real front end.

Each page reads the token from the URL fragment (never sent to a server, so never in an access log), drops
it from the address bar, and makes the same API call the real front end makes (README, "Mailed links")."""

from __future__ import annotations

import base64
import hashlib
import html

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

# path → (title, API call, whether a new password is asked for)
PAGES: dict[str, tuple[str, str, bool]] = {
    "/verify-email": ("メールアドレスの確認 / Confirm your e-mail address", "/v1/auth/verify-email", False),
    "/accept-invite": ("スタッフアカウントの開始 / Accept your invitation", "/v1/auth/verify-email", True),
    "/reset-password": ("パスワードの再設定 / Reset your password", "/v1/auth/password-reset/confirm", True),
    "/confirm-email-change": (
        "メールアドレス変更の確認 / Confirm your new e-mail address",
        "/v1/auth/email-change/confirm",
        False,
    ),
}

SCRIPT = """
const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
history.replaceState(null, "", location.pathname);
const form = document.getElementById("f"), out = document.getElementById("out");
const needsPassword = form.dataset.password === "1";
if (!needsPassword) form.hidden = true;
async function go(event) {
  if (event) event.preventDefault();
  const body = {token};
  if (needsPassword) body.password = document.getElementById("pw").value;
  const r = await fetch(form.dataset.api, {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body)});
  out.textContent = r.ok ? "完了しました / Done" : (await r.json()).title + " (" + r.status + ")";
}
if (!token) out.textContent = "リンクにトークンがありません / The link carries no token";
else if (needsPassword) form.addEventListener("submit", go);
else go();
""".strip()

_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; script-src 'sha256-{_HASH}'; connect-src 'self'; form-action 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def _page(title: str, api: str, password: bool) -> str:
    field = (
        '<label>新しいパスワード / New password <input id="pw" type="password" autocomplete="new-password" '
        'minlength="12" required></label> '
        if password
        else ""
    )
    return (
        '<!doctype html><html lang="ja"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        "<p>開発用の画面です（本番では相談マイページが表示します）。 / A development page: in production the "
        "my-page front end serves this address.</p>"
        f'<form id="f" data-api="{html.escape(api)}" data-password="{int(password)}">{field}'
        '<button type="submit">送信 / Submit</button></form><p id="out" role="status"></p>'
        f"<script>{SCRIPT}</script></body></html>"
    )


def routes() -> list[Route]:
    def endpoint_for(title: str, api: str, password: bool):
        body = _page(title, api, password)

        async def page(request: Request) -> HTMLResponse:
            return HTMLResponse(body, headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"})

        return page

    return [Route(path, endpoint_for(*spec), methods=["GET"]) for path, spec in PAGES.items()]
