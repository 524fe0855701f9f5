"""Blob stores: bytes under a key, nothing else. Evidence files (infra/storage.py) are cleaned and named there;
here they are only kept: in a local directory (one host, the default) or in S3-compatible object storage
(several replicas, MADOGUCHI_S3_BUCKET). Keys are chosen by the server, never by a user; both stores check
them anyway, so a key can never name a file outside the store.

Objects are private in both: files are 0600 in a 0700 directory, and objects are written without an ACL or a
public URL (the bucket must not be public either); every download goes through the API's authorization."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import anyio

from domain.errors import Unavailable
from infra.settings import Settings

CHUNK = 64 * 1024
# One or more path segments of letters, digits, dot, dash and underscore; none starting with a dot.
_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}(/[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}){0,4}")

log = logging.getLogger("madoguchi.blobs")


class BlobNotFound(KeyError):
    """No object under that key."""


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise ValueError("bad storage key")
    return key


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        """Keep `data` under `key` (a new key: keys are random and never reused)."""

    async def get(self, key: str) -> bytes: ...

    async def open(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes in chunks. Raises BlobNotFound (or Unavailable) before the first chunk, so a
        caller can still answer with an error instead of a broken download."""

    async def delete(self, key: str) -> None:
        """Remove the object; a key that is not there is not an error."""

    async def exists(self, key: str) -> bool: ...

    async def close(self) -> None: ...


class LocalBlobStore:
    """Files in one directory (and subdirectories for keys with a slash), written once, readable by the
    service's user only."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        await anyio.to_thread.run_sync(self._put, self._path(key), data)

    def _put(self, path: Path, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(path, "xb") as handle:  # never over an existing file
            handle.write(data)
        os.chmod(path, 0o600)

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await anyio.Path(path).read_bytes()
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc

    async def open(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await anyio.open_file(path, "rb")
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc
        return _file_chunks(handle)

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await anyio.Path(self._path(key)).unlink()

    async def exists(self, key: str) -> bool:
        return await anyio.Path(self._path(key)).is_file()

    async def close(self) -> None:
        return None


async def _file_chunks(handle: Any) -> AsyncIterator[bytes]:
    async with handle:
        while chunk := await handle.read(CHUNK):
            yield chunk


class S3BlobStore:
    """Objects in one bucket of an S3-compatible store (AWS S3, SeaweedFS, MinIO, Ceph), under a key prefix.
    One client per process, opened on first use (it belongs to the running event loop). A store that does not
    answer turns into 503 object_store_unavailable with Retry-After; botocore retries a few times first."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        timeout_seconds: float = 10.0,
        attempts: int = 3,
    ) -> None:
        self.bucket = bucket
        self._attempts = attempts
        self.prefix = prefix
        self._client_args: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "region_name": region,
            "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
        }
        self._timeout = timeout_seconds
        self._client: Any = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._lock = anyio.Lock()

    async def _s3(self) -> Any:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    from aiobotocore.config import AioConfig
                    from aiobotocore.session import get_session

                    config = AioConfig(
                        connect_timeout=self._timeout,
                        read_timeout=self._timeout,
                        retries={"max_attempts": self._attempts, "mode": "standard"},
                        # Path-style: works with every S3-compatible server and with bucket names that
                        # contain dots; AWS still accepts it.
                        s3={"addressing_style": "path"},
                        signature_version="s3v4",
                    )
                    stack = contextlib.AsyncExitStack()
                    self._client = await stack.enter_async_context(
                        get_session().create_client("s3", config=config, **self._client_args)
                    )
                    self._stack = stack
        return self._client

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        async with _reachable():
            s3 = await self._s3()
            await s3.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)

    async def get(self, key: str) -> bytes:
        return b"".join([chunk async for chunk in await self.open(key)])

    async def open(self, key: str) -> AsyncIterator[bytes]:
        async with _reachable(key):
            s3 = await self._s3()
            response = await s3.get_object(Bucket=self.bucket, Key=self._key(key))
        return _object_chunks(response["Body"])

    async def delete(self, key: str) -> None:
        async with _reachable():
            s3 = await self._s3()
            await s3.delete_object(Bucket=self.bucket, Key=self._key(key))

    async def exists(self, key: str) -> bool:
        try:
            async with _reachable(key):
                s3 = await self._s3()
                await s3.head_object(Bucket=self.bucket, Key=self._key(key))
        except BlobNotFound:
            return False
        return True

    async def close(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
        self._client, self._stack = None, None


async def _object_chunks(body: Any) -> AsyncIterator[bytes]:
    try:
        async with _reachable():
            while chunk := await body.read(CHUNK):
                yield chunk
    finally:
        body.close()


@contextlib.asynccontextmanager
async def _reachable(key: str | None = None) -> AsyncIterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if key is not None and (code in ("NoSuchKey", "404", "NotFound") or status == 404):
            raise BlobNotFound(key) from exc
        if isinstance(status, int) and status >= 500:
            log.warning("object store unavailable", extra={"error_type": code or type(exc).__name__})
            raise Unavailable(5, "object_store_unavailable") from exc
        raise  # access denied, no such bucket: configuration, not an outage; a 500 and a log line
    except (BotoCoreError, OSError) as exc:
        # Connection refused, timeouts, DNS: the type only (messages carry the endpoint).
        log.warning("object store unavailable", extra={"error_type": type(exc).__name__})
        raise Unavailable(5, "object_store_unavailable") from exc


def make_blob_store(settings: Settings) -> BlobStore:
    if settings.s3_bucket:
        secret = settings.s3_secret_access_key
        return S3BlobStore(
            bucket=settings.s3_bucket,
            prefix=settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
            timeout_seconds=settings.s3_timeout_seconds,
        )
    return LocalBlobStore(settings.storage_dir)
