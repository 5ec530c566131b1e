"""Where a result too large for the job record is kept: the artifacts bucket on every stage
(:class:`S3ResultStore`), memory in the lifecycle tests (:class:`MemoryResultStore`)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class ResultStore(Protocol):
    def put(self, key: str, body: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def url(self, key: str, *, expires_in: int) -> str:
        """A link the client can read the result from, for ``expires_in`` seconds."""
        ...


class S3ResultStore:
    def __init__(self, *, s3: S3Client, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")

    def get(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def url(self, key: str, *, expires_in: int) -> str:
        return self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
        )


class MemoryResultStore:
    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, key: str, body: bytes) -> None:
        with self._lock:
            self.bodies[key] = body

    def get(self, key: str) -> bytes:
        with self._lock:
            return self.bodies[key]

    def delete(self, key: str) -> None:
        with self._lock:
            self.bodies.pop(key, None)

    def url(self, key: str, *, expires_in: int) -> str:
        return f"memory:///{key}?expires_in={expires_in}"
