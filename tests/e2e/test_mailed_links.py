"""Mailed links lead somewhere: against `./dev serve` (no MADOGUCHI_PUBLIC_URL) they point at the running
server's port, whose development pages make the API call README names for each link."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import httpx
import pytest

from api.devpages import PAGES, SCRIPT
from infra.cli import dev_public_url
from infra.mail_templates import LINK_PATHS
from tests.e2e.test_account_journey import wait_for_token

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"


def test_a_mailed_link_works_against_the_running_servers_port(local_server: str, mailbox) -> None:  # type: ignore[no-untyped-def]
    email = "suzuki.ichiro@example.jp"
    with httpx.Client(base_url=local_server, timeout=10) as http:
        registered = http.post(
            "/v1/auth/register", json={"email": email, "password": "桜並木を歩いた春の朝に"}
        )
        assert registered.status_code == 202
        token = wait_for_token(mailbox, email)
        link = re.search(r"(http://\S+)", mailbox.body(mailbox.to(email)[-1])).group(1)  # type: ignore[union-attr]
        assert link == f"{local_server}/verify-email#token={token}"

        page = http.get(link.split("#", 1)[0])  # a browser never sends the fragment
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        # The page's script may run (its hash is allowed) and talk only to this server.
        digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
        csp = page.headers["content-security-policy"]
        assert f"script-src 'sha256-{digest}'" in csp and "connect-src 'self'" in csp
        assert 'data-api="/v1/auth/verify-email"' in page.text
        # What the page's script does with the fragment's token:
        assert http.post("/v1/auth/verify-email", json={"token": token}).status_code == 204


def test_the_development_public_url_follows_host_and_port() -> None:
    assert dev_public_url("127.0.0.1", 8123) == "http://127.0.0.1:8123"
    assert dev_public_url("0.0.0.0", 9000) == "http://127.0.0.1:9000"  # noqa: S104
    assert dev_public_url("::1", 9000) == "http://[::1]:9000"


def test_readme_names_each_link_path_and_the_call_that_consumes_it() -> None:
    readme = README.read_text(encoding="utf-8")
    section = readme[readme.index("### Mailed links") :]
    section = section[: section.index("\n## ", 1) if "\n## " in section[1:] else len(section)]
    for kind, path in LINK_PATHS.items():
        assert path.split("#")[0].split("{")[0] in section, kind
    for path, (_, api, _) in PAGES.items():
        line = next(x for x in section.splitlines() if f"`{path}" in x)
        assert api in line, path
    assert "password" in next(x for x in section.splitlines() if "`/accept-invite" in x)
