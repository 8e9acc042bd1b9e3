"""The S3 backend, through the ``minio`` client: MinIO in the cluster, Ceph RGW in tests.

Settings come from the environment, the way both a laptop and a Kubernetes pod provide them:
``SELFSUP_S3_ENDPOINT`` (``http://host:port``; ``AWS_ENDPOINT_URL`` also works) and the
standard ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (the names DVC and boto3 read too), or
``SELFSUP_S3_SECRET_DIR``: a mounted Kubernetes secret holding files with those two names.
Addressing is path-style (``endpoint/bucket/key``), which MinIO and RGW serve without DNS tricks.

Every call runs under :func:`~selfsup.store.retry.with_retries`; urllib3 itself does not retry,
so the number of attempts is exactly the policy's. Errors become a :class:`StoreError` that says
what to fix (credentials, endpoint, missing object).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error, ServerError
from minio.helpers import check_bucket_name

from selfsup.errors import StoreError
from selfsup.store.backend import Progress, check_key
from selfsup.store.retry import RetriesExhausted, RetryPolicy, with_retries

T = TypeVar("T")
log = logging.getLogger("selfsup.store")

ENDPOINT_ENV = "SELFSUP_S3_ENDPOINT"
SECRET_DIR_ENV = "SELFSUP_S3_SECRET_DIR"
ACCESS_KEY_ENV = "AWS_ACCESS_KEY_ID"
SECRET_KEY_ENV = "AWS_SECRET_ACCESS_KEY"

# Multipart above PART_SIZE, in PART_SIZE parts, PARALLEL_PARTS at a time: boto3's managed
# transfer defaults (8 MiB, 10 threads); measured on par with them (see BENCHMARKS.md).
PART_SIZE = 8 << 20
PARALLEL_PARTS = 8
_CHUNK = 1 << 20
# A silent endpoint (accepts, never answers) fails within the retry policy's attempts of this
# read timeout plus backoff: 4 × 6 s + 1.75 s, under 30 s. Reads of a working server's replies
# and of each streamed chunk take far less.
READ_TIMEOUT_S = 6.0
_AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken"}
_MISSING_CODES = {"NoSuchKey", "NoSuchVersion", "NoSuchBucket", "NoSuchObject"}
# NoSuchUpload: another writer of the same blob completed or aborted the multipart upload this
# one was resuming; the retry starts again (the content is the same, named by its sha256).
_TRANSIENT_CODES = {
    "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "NoSuchUpload",
}  # fmt: skip


def _abort_unfinished_uploads() -> Any:
    from minio.commonconfig import ENABLED, Filter
    from minio.lifecycleconfig import AbortIncompleteMultipartUpload, LifecycleConfig, Rule

    rule = Rule(
        ENABLED,
        rule_filter=Filter(prefix=""),
        rule_id="abort-unfinished-uploads",
        abort_incomplete_multipart_upload=AbortIncompleteMultipartUpload(1),
    )
    return LifecycleConfig([rule])


ABORT_UNFINISHED_UPLOADS = _abort_unfinished_uploads()


@dataclass(frozen=True)
class S3Settings:
    """Endpoint and credentials; ``repr`` hides the secret."""

    endpoint: str  # http(s)://host:port
    access_key: str
    secret_key: str
    region: str | None = None

    def __repr__(self) -> str:
        return f"S3Settings(endpoint={self.endpoint!r}, access_key={self.access_key!r}, ...)"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> S3Settings:
        env = dict(os.environ if env is None else env)
        endpoint = env.get(ENDPOINT_ENV) or env.get("AWS_ENDPOINT_URL")
        if not endpoint:
            raise StoreError(f"no S3 endpoint: set {ENDPOINT_ENV}=http://host:port")
        secret_dir = env.get(SECRET_DIR_ENV)
        if secret_dir:
            for name in (ACCESS_KEY_ENV, SECRET_KEY_ENV):
                path = Path(secret_dir) / name
                if not path.is_file():
                    raise StoreError(f"{SECRET_DIR_ENV}={secret_dir} has no file {name}")
                env[name] = path.read_text().strip()
        access, secret = env.get(ACCESS_KEY_ENV), env.get(SECRET_KEY_ENV)
        if not access or not secret:
            raise StoreError(
                f"no S3 credentials: set {ACCESS_KEY_ENV} and {SECRET_KEY_ENV}, or "
                f"{SECRET_DIR_ENV} to a mounted secret holding files with those names"
            )
        return cls(endpoint, access, secret, env.get("AWS_DEFAULT_REGION") or None)


def upload_etag(path: Path, multipart: bool) -> str:
    """The ETag S3 gives ``path`` uploaded by :meth:`S3Backend.put_file`: the MD5 of the file, or
    for a multipart upload (``PART_SIZE`` parts) the MD5 of the parts' MD5s and ``-<parts>``."""
    whole, parts = hashlib.md5(usedforsecurity=False), []
    with open(path, "rb") as handle:
        for part in iter(lambda: handle.read(PART_SIZE), b""):
            whole.update(part)
            parts.append(hashlib.md5(part, usedforsecurity=False).digest())
    if not multipart:
        return whole.hexdigest()
    return hashlib.md5(b"".join(parts), usedforsecurity=False).hexdigest() + f"-{len(parts)}"


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, S3Error):
        return exc.code in _TRANSIENT_CODES
    return isinstance(exc, ServerError | urllib3.exceptions.HTTPError | ConnectionError)


def _http_client(timeout_s: float) -> urllib3.PoolManager:
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=min(timeout_s, 5.0), read=timeout_s),
        maxsize=32,
        retries=urllib3.Retry(total=0, connect=0, read=0, redirect=0, raise_on_status=False),
    )


class S3Backend:
    """Objects under ``s3://bucket/prefix`` of one endpoint."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        settings: S3Settings,
        policy: RetryPolicy | None = None,
        timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        url = urlsplit(
            settings.endpoint if "://" in settings.endpoint else "http://" + settings.endpoint
        )
        if url.scheme not in ("http", "https") or not url.netloc:
            raise StoreError(f"S3 endpoint {settings.endpoint!r} is not http(s)://host:port")
        try:
            check_bucket_name(bucket, strict=True)
        except ValueError as exc:
            raise StoreError(
                f"s3://{bucket}: not a valid bucket name ({exc}); use 3-63 lowercase letters, "
                "digits, '.' and '-'"
            ) from None
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.settings = settings
        self.policy = policy or RetryPolicy()
        self.client = Minio(
            url.netloc,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            secure=url.scheme == "https",
            region=settings.region or "us-east-1",
            http_client=_http_client(timeout_s),
        )

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/") + f" at {self.settings.endpoint}"

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, action: Callable[[], T]) -> T:
        """Run one S3 request with retries; translate failures into StoreError."""
        try:
            return with_retries(action, self.policy, _is_transient, what)
        except RetriesExhausted as exc:
            raise StoreError(
                f"{what}: S3 at {self.settings.endpoint} failed {exc.attempts} times "
                f"(is it up and reachable?); last error: {exc.last}"
            ) from None
        except S3Error as exc:
            if exc.code in _AUTH_CODES:
                raise StoreError(
                    f"{what}: S3 at {self.settings.endpoint} rejected the credentials "
                    f"({exc.code}); check {ACCESS_KEY_ENV}/{SECRET_KEY_ENV}"
                ) from None
            if exc.code in _MISSING_CODES:
                raise StoreError(f"{what}: not found ({exc.code})") from None
            raise StoreError(f"{what}: S3 error {exc.code}: {exc.message}") from None
        except MinioException as exc:
            raise StoreError(f"{what}: {exc}") from None

    def ensure_bucket(self, versioning: bool = False) -> None:
        """Create the bucket when missing; optionally turn on versioning (keeps overwritten
        manifests, hence previous models)."""
        from minio.commonconfig import ENABLED
        from minio.versioningconfig import VersioningConfig

        def make() -> None:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)
                # The server aborts a multipart upload nobody finished or resumed in a day.
                self.client.set_bucket_lifecycle(self.bucket, ABORT_UNFINISHED_UPLOADS)
            if versioning:
                self.client.set_bucket_versioning(self.bucket, VersioningConfig(ENABLED))

        self._call(f"create bucket {self.bucket}", make)

    def exists(self, key: str) -> bool:
        name = self._key(key)

        def stat() -> bool:
            try:
                self.client.stat_object(self.bucket, name)
            except S3Error as exc:
                if exc.code in _MISSING_CODES:
                    return False
                raise
            return True

        return self._call(f"stat s3://{self.bucket}/{name}", stat)

    def holds_copy_of(self, key: str, path: Path) -> bool:
        """Size and ETag against ``path``: the ETag is the MD5 the server computed of what it
        stored (of each part, for a multipart upload), so an object overwritten or damaged
        since does not pass for the file."""
        name = self._key(key)

        def stat() -> tuple[int, str] | None:
            try:
                found = self.client.stat_object(self.bucket, name)
            except S3Error as exc:
                if exc.code in _MISSING_CODES:
                    return None
                raise
            return int(found.size or 0), str(found.etag or "").strip('"')

        found = self._call(f"stat s3://{self.bucket}/{name}", stat)
        if found is None or found[0] != Path(path).stat().st_size:
            return False
        return found[1] == upload_etag(Path(path), found[1].count("-") > 0)

    def size(self, key: str) -> int:
        name = self._key(key)
        stat = self._call(
            f"stat s3://{self.bucket}/{name}", lambda: self.client.stat_object(self.bucket, name)
        )
        return int(stat.size or 0)

    def put_file(self, key: str, path: Path, progress: Progress | None = None) -> None:
        """Upload ``path``; above ``PART_SIZE`` as a multipart upload that a retry resumes."""
        name = self._key(key)
        size = Path(path).stat().st_size
        if size <= PART_SIZE:
            self._call(
                f"upload {path} to s3://{self.bucket}/{name}",
                lambda: self.client.fput_object(self.bucket, name, str(path)),
            )
        else:
            self._call(
                f"upload {path} to s3://{self.bucket}/{name}",
                lambda: self._put_multipart(name, Path(path)),
            )
        if progress is not None:
            progress(size)

    def _put_multipart(self, name: str, path: Path) -> None:
        """A multipart upload of ``path`` to ``name`` that resumes an unfinished one.

        A killed upload leaves its parts in the bucket; the next attempt (a retry, or a new
        ``push`` after a SIGKILL) finds that upload, keeps every part whose ETag is the MD5 of
        the local part, sends only the others and completes it; other unfinished uploads of the
        key are aborted. minio-py offers these S3 calls only as underscore methods (pinned in
        pyproject.toml); the bucket's lifecycle rule (:meth:`ensure_bucket`) aborts uploads
        nobody resumes.
        """
        from minio.datatypes import Part

        client = self.client
        pending = [
            u.upload_id
            for u in client._list_multipart_uploads(self.bucket, prefix=name).uploads
            if u.object_name == name and u.upload_id
        ]
        upload_id = (
            pending[0] if pending else client._create_multipart_upload(self.bucket, name, {})
        )
        for stale in pending[1:]:
            client._abort_multipart_upload(self.bucket, name, stale)
        done = {
            part.part_number: part.etag.strip('"')
            for part in client._list_parts(self.bucket, name, upload_id).parts
        } if pending else {}  # fmt: skip
        count = -(-path.stat().st_size // PART_SIZE)

        def send(number: int) -> tuple[Part, bool]:
            """Part ``number`` (1-based): kept if already there, else uploaded."""
            with open(path, "rb") as handle:
                data = os.pread(handle.fileno(), PART_SIZE, (number - 1) * PART_SIZE)
            digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
            if done.get(number) == digest:
                return Part(number, digest), True
            etag = client._upload_part(self.bucket, name, data, None, upload_id, number)
            return Part(number, etag), False

        with ThreadPoolExecutor(PARALLEL_PARTS) as pool:
            sent = list(pool.map(send, range(1, count + 1)))
        client._complete_multipart_upload(self.bucket, name, upload_id, [p for p, _ in sent])
        resumed = sum(kept for _, kept in sent)
        if resumed:
            log.info("upload of %s resumed: %d of %d parts were already there", name, resumed,
                     count)  # fmt: skip

    def put_bytes(self, key: str, data: bytes) -> None:
        import io

        name = self._key(key)
        self._call(
            f"upload s3://{self.bucket}/{name}",
            lambda: self.client.put_object(self.bucket, name, io.BytesIO(data), len(data)),
        )

    def delete(self, key: str) -> None:
        name = self._key(key)
        self._call(
            f"delete s3://{self.bucket}/{name}",
            lambda: self.client.remove_object(self.bucket, name),
        )

    def get_bytes(self, key: str, version_id: str | None = None) -> bytes:
        name = self._key(key)

        def get() -> bytes:
            response = self.client.get_object(self.bucket, name, version_id=version_id)
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

        return self._call(f"download s3://{self.bucket}/{name}", get)

    def iter_chunks(self, key: str, version_id: str | None = None) -> Iterator[bytes]:
        """Stream an object. A connection that breaks mid-stream is resumed with a ranged GET
        from the last byte received, within the same bounded retry policy."""
        name = self._key(key)
        what = f"download s3://{self.bucket}/{name}"
        offset = 0
        for attempt in range(self.policy.attempts):
            response = self._call(
                what,
                lambda start=offset: self.client.get_object(  # type: ignore[misc]
                    self.bucket, name, offset=start, version_id=version_id
                ),
            )
            try:
                for chunk in response.stream(_CHUNK):
                    offset += len(chunk)
                    yield chunk
                return
            except (urllib3.exceptions.HTTPError, ConnectionError) as exc:
                if attempt + 1 == self.policy.attempts:
                    raise StoreError(
                        f"{what}: the connection broke {self.policy.attempts} times "
                        f"(last at byte {offset}: {exc})"
                    ) from None
                log.warning("%s broke at byte %d (%s); resuming", what, offset, exc)
                time.sleep(self.policy.delay(attempt))
            finally:
                response.close()
                response.release_conn()

    def list_keys(self, prefix: str) -> list[str]:
        full = (
            self._key(prefix.rstrip("/")) + "/"
            if prefix
            else (f"{self.prefix}/" if self.prefix else "")
        )
        strip = len(f"{self.prefix}/") if self.prefix else 0

        def listing() -> list[str]:
            objects = self.client.list_objects(self.bucket, prefix=full, recursive=True)
            return sorted(str(o.object_name)[strip:] for o in objects if o.object_name)

        return self._call(f"list s3://{self.bucket}/{full}", listing)

    def versions(self, key: str) -> list[str]:
        name = self._key(key)

        def listing() -> list[str]:
            objects = self.client.list_objects(
                self.bucket, prefix=name, include_version=True, recursive=True
            )
            # S3 lists the versions of one key newest first.
            found = [o for o in objects if o.object_name == name and o.version_id]
            return [str(o.version_id) for o in found if not o.is_delete_marker]

        return self._call(f"list versions of s3://{self.bucket}/{name}", listing)
