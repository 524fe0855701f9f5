"""Outgoing mail: SMTP for real use, console or file backends for development."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import aiosmtplib

from infra.settings import MailBackend, Settings


class Mailer(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None: ...


def _message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{uuid.uuid4()}@madoguchi>"
    message.set_content(body, charset="utf-8")
    return message


class SmtpMailer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, to: str, subject: str, body: str) -> None:
        s = self.settings
        await aiosmtplib.send(
            _message(s.mail_from, to, subject, body),
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            start_tls=s.smtp_starttls,
            use_tls=s.smtp_tls,
            timeout=s.smtp_timeout_seconds,
        )


class ConsoleMailer:
    """Development only (production refuses it): prints the mail so a developer can follow the link."""

    def __init__(self, settings: Settings) -> None:
        self.sender = settings.mail_from

    async def send(self, to: str, subject: str, body: str) -> None:
        sys.stdout.write(f"\n----- mail to {to} -----\nSubject: {subject}\n\n{body}----- end of mail -----\n")
        sys.stdout.flush()


class FileMailer:
    """Development only (production refuses it). The files hold sign-in and reset links: readable by the
    service's own user only (directory 700, files 600, whatever the umask)."""

    def __init__(self, settings: Settings) -> None:
        self.sender = settings.mail_from
        self.directory = Path(settings.mail_file_dir)

    async def send(self, to: str, subject: str, body: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.directory / f"{uuid.uuid4()}.eml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(_message(self.sender, to, subject, body).as_bytes())


def make_mailer(settings: Settings) -> Mailer:
    backends: dict[MailBackend, Callable[[Settings], Mailer]] = {
        MailBackend.smtp: SmtpMailer,
        MailBackend.console: ConsoleMailer,
        MailBackend.file: FileMailer,
    }
    return backends[settings.mail_backend](settings)
