"""The file mail backend (development) keeps its mails private (issue 13: they were world-readable, with
reset links in them)."""

from __future__ import annotations

import os
import stat
from email import message_from_bytes
from email.policy import default
from pathlib import Path

from infra.mail import make_mailer
from infra.settings import MailBackend, Settings


async def test_mail_files_are_readable_by_the_service_user_only(tmp_path: Path) -> None:
    directory = tmp_path / "mail"
    mailer = make_mailer(Settings(mail_backend=MailBackend.file, mail_file_dir=directory))
    previous = os.umask(0o000)  # the most permissive umask a deployment could have
    try:
        await mailer.send(
            "yamada.hanako@example.jp",
            "【窓口】パスワードの再設定",
            "https://madoguchi.example.jp/reset#token=abc\n",
        )
    finally:
        os.umask(previous)
    (written,) = directory.iterdir()
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    mail = message_from_bytes(written.read_bytes(), policy=default)
    assert mail["Subject"] == "【窓口】パスワードの再設定"
    assert "reset#token=abc" in mail.get_content()  # type: ignore[attr-defined]
