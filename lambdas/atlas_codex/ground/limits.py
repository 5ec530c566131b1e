"""Every limit the service enforces on client input and stored records, defined once."""

from __future__ import annotations

from typing import Final

MAX_URLS_PER_JOB: Final = 1000
"""A batch fans out one child per URL; more than this is several batches."""
MAX_URL_LENGTH: Final = 2048
MAX_INSTRUCTION_CHARS: Final = 4000
MAX_JSON_SCHEMA_BYTES: Final = 32 * 1024
MAX_JSON_SCHEMA_DEPTH: Final = 12
MAX_SELECTOR_FIELDS: Final = 200
MAX_SELECTOR_DEPTH: Final = 6
MAX_CSS_SELECTOR_CHARS: Final = 512
MAX_CRAWL_PAGES: Final = 5000
MAX_CRAWL_DEPTH: Final = 20
MAX_URL_PATTERNS: Final = 50
MAX_IDEMPOTENCY_KEY_CHARS: Final = 255
MAX_CORRELATION_ID_CHARS: Final = 128
MAX_JOB_ID_CHARS: Final = 128
MAX_OWNER_ID_CHARS: Final = 128
MAX_ERROR_MESSAGE_CHARS: Final = 2000
MAX_NOTE_CHARS: Final = 500
"""A routing reason, warning or quality reason of a job, the reason of a status change, or
the error of a webhook attempt."""
MAX_NOTES: Final = 20
"""Routing reasons, warnings and quality reasons a job keeps, each."""
MAX_ATTEMPTS_RECORDED: Final = 50
MAX_TIMELINE_ENTRIES: Final = 100
MAX_REQUEST_BODY_BYTES: Final = 256 * 1024
MAX_BODY_JSON_DEPTH: Final = 32
"""Arrays and objects nested deeper than this in a request body are refused (400)."""
INLINE_RESULT_MAX_BYTES: Final = 350 * 1024
"""Results larger than this go to the artifacts bucket (DynamoDB items stop at 400 KB)."""
SYNC_MAX_S: Final = 25.0
"""The longest ``POST /extract`` runs inline: below API Gateway's 29 s integration limit,
whatever the function's timeout; past it the job goes on asynchronously."""
RESULT_URL_EXPIRES_S: Final = 900
"""How long a presigned result URL stays valid (results over the inline limit)."""
MAX_JOB_COST_USD: Final = 1000.0
"""The highest per-job ceiling (``max_cost_usd``) a client may set."""
MAX_EVIDENCE_QUOTE_CHARS: Final = 500
"""A model's quote longer than this is cut before it is stored."""
JOBS_PER_INVOCATION: Final = 4
"""The worker's SQS batch size: the messages of a batch run side by side in one invocation
(a job mostly waits on pages and models). The queue's event source runs at most 1,000
batches at once, so this is how many jobs one mapping carries at once, per 1,000. Each job
of a batch shares the function's memory (docs/CAPACITY.md)."""
WEBHOOKS_PER_INVOCATION: Final = 10
"""The webhooks function's SQS batch size (deliveries are sent one after another)."""
RENDER_TIMEOUT_S: Final = 15.0
"""The longest one page may take to render in the browser (selector or network idle)."""
RENDER_MAX_BYTES: Final = 5 * 1024 * 1024
"""A rendered page's HTML is cut at this size (the fetcher's own limit on a page)."""
RENDER_PAGE_HEAP_MB: Final = 512
"""A page's scripts may hold this much JavaScript heap; a page that wants more crashes its
own render (the browser is relaunched for the next), not the function's memory."""
RENDER_ANSWER_S: Final = 3.0
"""How long the browser has to answer a command that needs no page load (read the page,
close it, a health probe). A page that does not answer is stopped; a browser that does not
answer is killed and relaunched before the next render."""

PAGE_FETCH_TIMEOUT_S: Final = 20.0
"""The longest one page's fetch may take, redirects and a site's short Retry-After included."""
CRAWL_CONCURRENCY: Final = 4
"""Pages a crawl fetches at once."""
MODEL_CALL_MAX_S: Final = 120.0
"""The longest one model call may wait for its answer."""
