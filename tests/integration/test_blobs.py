"""The blob stores under evidence files: a local directory and S3-compatible object storage (a real SeaweedFS
on loopback, no mocks) keep, stream, find and delete bytes by key alike; keys cannot leave the store; objects
are private; a store that does not answer is a 503, not a 500."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from domain.case_keys import CaseKey
from domain.errors import Unavailable
from infra.blobs import CHUNK, BlobNotFound, BlobStore, LocalBlobStore, S3BlobStore
from tests.conftest import S3Server, assert_problem, free_port


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "evidence")
        return
    server: S3Server = request.getfixturevalue("s3_server")
    made = S3BlobStore(
        bucket=server.bucket,
        prefix=f"blobs-{uuid.uuid4().hex[:8]}/",
        endpoint_url=server.endpoint_url,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
    )
    yield made
    await made.close()


async def test_put_get_stream_exists_delete(store: BlobStore) -> None:
    data = os.urandom(3 * CHUNK + 17)  # more than one chunk, not a multiple of it
    key = f"{uuid.uuid4().hex}.png"
    assert not await store.exists(key)
    await store.put(key, data, content_type="image/png")
    assert await store.exists(key)
    assert await store.get(key) == data
    chunks = [c async for c in await store.open(key)]
    assert len(chunks) > 1 and b"".join(chunks) == data
    # Keys with a folder: the sealed original of an evidence file sits beside the cleaned one.
    await store.put(f"originals/{key}", b"original")
    assert await store.get(f"originals/{key}") == b"original"
    await store.delete(key)
    assert not await store.exists(key)
    await store.delete(key)  # deleting what is gone is not an error
    assert await store.get(f"originals/{key}") == b"original"


async def test_a_missing_key_is_not_found_before_any_byte(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        await store.open("0123456789abcdef.png")
    with pytest.raises(BlobNotFound):
        await store.get("0123456789abcdef.png")


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "/etc/passwd", ".hidden", "a/../../b", "a//b", "", "a\\\\b", "名前.png", "a b"]
)
async def test_keys_cannot_leave_the_store(store: BlobStore, key: str) -> None:
    for call in (store.put(key, b"x"), store.get(key), store.exists(key), store.delete(key)):
        with pytest.raises(ValueError, match="bad storage key"):
            await call


async def test_local_files_are_readable_by_the_service_only(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "evidence")
    await store.put("a1.png", b"x")
    assert stat.S_IMODE((tmp_path / "evidence").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "evidence" / "a1.png").stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):  # written once: a key is never reused
        await store.put("a1.png", b"y")


async def test_objects_are_private_without_the_key(s3_server: S3Server) -> None:
    store = S3BlobStore(
        bucket=s3_server.bucket,
        prefix="private/",
        endpoint_url=s3_server.endpoint_url,
        access_key_id=s3_server.access_key_id,
        secret_access_key=s3_server.secret_access_key,
    )
    try:
        await store.put("secret.png", b"evidence bytes", content_type="image/png")
        async with httpx.AsyncClient() as anonymous:
            for url in (
                f"{s3_server.endpoint_url}/{s3_server.bucket}/private/secret.png",
                f"{s3_server.endpoint_url}/{s3_server.bucket}?list-type=2",
            ):
                refused = await anonymous.get(url)
                assert refused.status_code == 403 and b"evidence bytes" not in refused.content
        wrong = S3BlobStore(
            bucket=s3_server.bucket,
            prefix="private/",
            endpoint_url=s3_server.endpoint_url,
            access_key_id=s3_server.access_key_id,
            secret_access_key="not-the-secret",
        )
        try:
            with pytest.raises(Exception) as denied:
                await wrong.get("secret.png")
            assert not isinstance(denied.value, BlobNotFound | Unavailable)  # a refusal, not "missing"
        finally:
            await wrong.close()
    finally:
        await store.delete("secret.png")
        await store.close()


async def test_an_unreachable_object_store_is_unavailable() -> None:
    store = S3BlobStore(
        bucket="evidence",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        access_key_id="k",
        secret_access_key="s",
        timeout_seconds=0.5,
        attempts=1,
    )
    try:
        for call in (
            store.put("a.png", b"x"),
            store.open("a.png"),
            store.exists("a.png"),
            store.delete("a.png"),
        ):
            with pytest.raises(Unavailable) as refused:
                await call
            assert refused.value.code == "object_store_unavailable"
    finally:
        await store.close()


async def test_the_evidence_store_keeps_the_cleaned_bytes_and_their_hash(s3_container) -> None:  # type: ignore[no-untyped-def]
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, "PNG")
    key = CaseKey(uuid.uuid4(), bytes(range(32)))
    kept = await s3_container.consultations.files.store(out.getvalue(), key)
    copy = b"".join(
        [chunk async for chunk in await s3_container.consultations.files.open(kept.storage_key, key)]
    )
    assert hashlib.sha256(copy).hexdigest() == kept.copy_sha256 and len(copy) == kept.size
    assert copy not in await s3_container.blobs.get(kept.storage_key)  # at rest it is encrypted
    await s3_container.blobs.delete(kept.storage_key)


async def test_when_the_object_store_is_unreachable_uploads_and_downloads_answer_503(
    s3_server: S3Server, s3_app, settings, suite_clock, people, client
) -> None:  # type: ignore[no-untyped-def]
    """A replica that cannot reach the store answers 503 with Retry-After; the evidence record stays without a
    file, so the upload can simply be sent again. (The file was uploaded through a replica that could.)"""
    from api.main import create_app
    from infra.container import build_container
    from tests.api.consultation_helpers import open_consultation
    from tests.contract_recorder import ResponseRecorder

    owner = await people.create()
    c = await open_consultation(client, owner)
    items = [
        (
            await client.post(
                f"/v1/consultations/{c['id']}/evidence",
                headers=owner.headers,
                json={"url": f"https://x.com/a/{n}"},
            )
        ).json()
        for n in (1, 2)
    ]
    urls = [f"/v1/consultations/{c['id']}/evidence/{item['id']}/file" for item in items]
    image = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(image, "PNG")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=ResponseRecorder(s3_app)), base_url="http://testserver"
    ) as reachable:
        sent = await reachable.put(
            urls[0], headers=owner.headers, files={"file": ("a.png", image.getvalue())}
        )
        assert sent.status_code == 200, sent.text

    cut_off = build_container(
        settings.model_copy(
            update=s3_server.settings()
            | {"s3_endpoint_url": f"http://127.0.0.1:{free_port()}", "s3_timeout_seconds": 0.5}
        ),
        suite_clock,
    )
    try:
        transport = httpx.ASGITransport(
            app=ResponseRecorder(create_app(container=cut_off)), raise_app_exceptions=False
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            download = await http.get(urls[0], headers=owner.headers)
            assert_problem(download, 503, "object_store_unavailable")
            assert download.headers["Retry-After"] == "5" and "127.0.0.1" not in download.text
            upload = await http.put(
                urls[1], headers=owner.headers, files={"file": ("b.png", image.getvalue())}
            )
            assert_problem(upload, 503, "object_store_unavailable")
            # Nothing was attached: the same upload can be sent again once the store answers.
            item = await client.get(
                f"/v1/consultations/{c['id']}/evidence/{items[1]['id']}", headers=owner.headers
            )
            assert item.status_code == 200 and item.json()["file"] is None
    finally:
        await cut_off.close()
