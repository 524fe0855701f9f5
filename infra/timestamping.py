"""RFC 3161 time stamps for chain heads, with rfc3161-client (Trail of Bits; builds the TimeStampReq and checks
the response's CMS signature, certificate chain, EKU and message imprint). The HTTP exchange is ours (httpx):
the library does no network I/O. rfc3161ng was not used: unreleased since 2020, pyasn1-based, and it checks
the signature without the certificate chain."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from cryptography import x509
from rfc3161_client import (
    HashAlgorithm,
    TimestampRequestBuilder,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

CONTENT_TYPE_QUERY = "application/timestamp-query"
CONTENT_TYPE_REPLY = "application/timestamp-reply"


class TimestampFailed(Exception):
    """The TSA could not be reached or answered something that is not a valid token for our request."""


@dataclass(frozen=True, slots=True)
class Token:
    response: bytes  # DER TimeStampResp, as the TSA answered it
    gen_time: datetime


def load_roots(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def verify_token(
    response: bytes, message: bytes, roots: list[x509.Certificate], nonce: int | None = None
) -> datetime:
    """The time the TSA vouches `message` existed at; raises TimestampFailed unless the response is
    granted, signed by a time-stamping certificate that chains to `roots`, and over SHA-256(message)."""
    try:
        decoded = decode_timestamp_response(response)
        builder = VerifierBuilder()
        for root in roots:
            builder = builder.add_root_certificate(root)
        if nonce is not None:
            builder = builder.nonce(nonce)
        builder.build().verify(decoded, hashlib.sha256(message).digest())
    except (VerificationError, ValueError) as exc:
        raise TimestampFailed(str(exc)) from exc
    return decoded.tst_info.gen_time.astimezone(UTC)


class TimestampClient:
    def __init__(self, url: str, roots: list[x509.Certificate], *, timeout: float = 10.0) -> None:
        self.url = url
        self.roots = roots
        self.timeout = timeout

    async def stamp(self, message: bytes) -> Token:
        request = (
            TimestampRequestBuilder()
            .data(message)
            .hash_algorithm(HashAlgorithm.SHA256)
            .nonce(nonce=True)
            .cert_request(cert_request=True)
            .build()
        )
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as http:
                answer = await http.post(
                    self.url, content=request.as_bytes(), headers={"Content-Type": CONTENT_TYPE_QUERY}
                )
        except httpx.HTTPError as exc:
            raise TimestampFailed(f"TSA unreachable: {type(exc).__name__}") from exc
        if answer.status_code != 200:
            raise TimestampFailed(f"TSA answered {answer.status_code}")
        gen_time = verify_token(answer.content, message, self.roots, nonce=request.nonce)
        return Token(answer.content, gen_time)
