"""Argon2id hashing off the event loop, behind a semaphore so a burst of sign-ins cannot exhaust memory."""

from __future__ import annotations

import asyncio
import unicodedata
from functools import cached_property

import anyio.to_thread
from argon2 import PasswordHasher as Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Argon2Passwords:
    def __init__(self, *, memory_kib: int = 19_456, iterations: int = 2, concurrency: int = 4) -> None:
        # OWASP's Argon2id profile m=19 MiB, t=2, p=1 (security.md §5.1); concurrency bounds memory.
        self._argon = Argon2(time_cost=iterations, memory_cost=memory_kib, parallelism=1, type=Type.ID)
        self._limit = asyncio.Semaphore(concurrency)

    @cached_property
    def _dummy(self) -> str:
        return self._argon.hash("madoguchi-dummy-password")

    @staticmethod
    def _prepare(password: str) -> str:
        # NFKC so the same password typed with a full-width IME still matches.
        return unicodedata.normalize("NFKC", password)

    async def _run(self, fn, *args):
        async with self._limit:
            return await anyio.to_thread.run_sync(fn, *args)

    async def hash(self, password: str) -> str:
        return await self._run(self._argon.hash, self._prepare(password))

    async def verify(self, password_hash: str, password: str) -> bool:
        def check() -> bool:
            try:
                return self._argon.verify(password_hash, self._prepare(password))
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        return await self._run(check)

    async def burn(self, password: str) -> None:
        await self.verify(self._dummy, password)

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._argon.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def is_common(self, password: str) -> bool:
        return password in _common_passwords()


def _common_passwords() -> frozenset[str]:
    global _COMMON
    if _COMMON is None:
        # zxcvbn ships a ranked list of the 30,000 most common leaked passwords.
        from zxcvbn.frequency_lists import FREQUENCY_LISTS

        _COMMON = frozenset(FREQUENCY_LISTS["passwords"])
    return _COMMON


_COMMON: frozenset[str] | None = None
