"""TOTP for staff (pyotp); the shared secret is stored sealed with a key derived from the master secret."""

from __future__ import annotations

import base64
import hmac
from datetime import datetime

import pyotp
from cryptography.fernet import Fernet, InvalidToken

from infra.tokens import derive_key


class Totp:
    def __init__(self, master_key: bytes, issuer: str = "madoguchi") -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(derive_key(master_key, "totp-seal")))
        self.issuer = issuer

    def new_secret(self) -> str:
        return pyotp.random_base32()

    def provisioning_uri(self, secret: str, account_name: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=self.issuer)

    def verify(self, secret: str, code: str, *, now: datetime, after_step: int | None) -> int | None:
        code = code.strip()
        if not secret or not (code.isdigit() and len(code) == 6):
            return None
        totp = pyotp.TOTP(secret)
        current = totp.timecode(now)
        for step in (current - 1, current, current + 1):  # one step of clock drift either way
            if (after_step is None or step > after_step) and hmac.compare_digest(
                totp.generate_otp(step), code
            ):
                return step
        return None

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def unseal(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return ""
