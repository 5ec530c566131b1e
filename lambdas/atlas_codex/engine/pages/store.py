"""Fetched pages kept in the artifacts bucket, so a new schema can run over them again.

Under ``pages/{job_id}/``: each page's raw HTML (``NNNNN.html``) and its main-content markdown
(``NNNNN.md``), and a manifest (``manifest.json``) listing every page the job tried, fetched or
failed, in order. The bucket's lifecycle rule deletes them after the stage's expiry; the
manifest states that instant, and every result made from the pages repeats it as
``expires_at``. A re-extraction reads the pages back and makes no request to the site.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from atlas_codex.extraction.pages import PageManifest, PagesUnavailable, StoredPage
from atlas_codex.ground import artifacts, aws, limits
from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.ground.values import utcnow

if TYPE_CHECKING:  # the engine's modules load on the extraction path only (cold start)
    from atlas_codex.engine.pages.crawler import CrawledPage


class PageStore:
    def __init__(
        self,
        *,
        s3: Any,
        bucket: str,
        expiry_days: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.expiry = timedelta(days=expiry_days)
        self.clock = clock

    @classmethod
    def for_config(cls, config: RuntimeConfig) -> PageStore:
        return cls(
            s3=aws.lazy(aws.s3, config.aws_endpoint_url),
            bucket=config.artifacts_bucket,
            expiry_days=config.pages_expiry_days,
        )

    def save(self, job_id: str, crawled: Sequence[CrawledPage]) -> PageManifest:
        """Store every page's HTML, and its main-content markdown when the extraction made
        it (a CSS or structured-data job never runs the main-content rules, which cost a
        cold worker ~0.3 s of imports); the manifest last: it names only stored objects."""
        entries: list[StoredPage] = []
        for index, page in enumerate(crawled):
            if page.page is None:
                error = page.error
                entries.append(
                    StoredPage(
                        index=index,
                        url=page.url,
                        depth=page.depth,
                        status=error.status if error else None,
                        error_code=error.code if error else "not_fetched",
                        error_message=(error.message if error else "not fetched")[
                            : limits.MAX_ERROR_MESSAGE_CHARS
                        ],
                        error_retryable=error.retryable if error else False,
                    )
                )
                continue
            fetched = page.page
            self._put(artifacts.page_key(job_id, index, "html"), fetched.text, "text/html")
            markdown = page.made_markdown()
            if markdown is not None:  # made for the extraction; never made only to store it
                self._put(artifacts.page_key(job_id, index, "md"), markdown, "text/markdown")
            entries.append(
                StoredPage(
                    index=index,
                    url=fetched.url,
                    depth=page.depth,
                    status=fetched.status,
                    content_type=fetched.content_type,
                    encoding=fetched.encoding,
                )
            )
        now = self.clock()
        manifest = PageManifest(
            job_id=job_id, stored_at=now, expires_at=now + self.expiry, pages=entries
        )
        self._put(
            artifacts.pages_manifest_key(job_id), manifest.model_dump_json(), "application/json"
        )
        return manifest

    def manifest(self, job_id: str) -> PageManifest:
        """The job's manifest; :class:`PagesUnavailable` when absent or past its expiry."""
        key = artifacts.pages_manifest_key(job_id)
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if _missing(exc):
                raise PagesUnavailable(job_id) from None
            raise
        manifest = PageManifest.model_validate_json(body)
        if manifest.expires_at <= self.clock():
            raise PagesUnavailable(job_id, expired_at=manifest.expires_at)
        return manifest

    def load(self, job_id: str) -> tuple[PageManifest, list[CrawledPage]]:
        """The stored pages, as the crawler would have handed them over (each parsed when a
        strategy first reads it)."""
        from atlas_codex.engine.pages.crawler import CrawledPage
        from atlas_codex.engine.pages.fetch import FetchError, Page

        manifest = self.manifest(job_id)
        pages: list[CrawledPage] = []
        for entry in manifest.pages:
            if entry.error_code is not None:
                error = FetchError(
                    entry.error_code,
                    entry.error_message or entry.error_code,
                    retryable=entry.error_retryable,
                    status=entry.status,
                )
                pages.append(
                    CrawledPage(url=entry.url, depth=entry.depth, order=entry.index, error=error)
                )
                continue
            key = artifacts.page_key(job_id, entry.index, "html")
            try:
                html = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            except ClientError as exc:
                if _missing(exc):
                    raise PagesUnavailable(job_id, expired_at=manifest.expires_at) from None
                raise
            text = html.decode("utf-8")
            page = Page(
                url=entry.url,
                status=entry.status or 200,
                content_type=entry.content_type,
                text=text,
                encoding=entry.encoding,
            )
            pages.append(
                CrawledPage(url=entry.url, depth=entry.depth, order=entry.index, page=page)
            )
        return manifest, pages

    def _put(self, key: str, text: str, content_type: str) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=text.encode("utf-8"),
            ContentType=f"{content_type}; charset=utf-8",
        )


def _missing(exc: ClientError) -> bool:
    """S3 said the object is not there (it was never stored, or the lifecycle deleted it)."""
    return exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404")
