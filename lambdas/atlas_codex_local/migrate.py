"""``atlas-codex migrate``: legacy job records to canonical ones, with backup and rollback.

An offline tool. It scans the source tables in parallel segments (rate-limited), converts each
legacy record with :func:`atlas_codex_local.legacy.convert`, and writes the canonical job into
the stage's jobs table with one conditional write that never overwrites a canonical record.

Before each write, the item it replaces (or the fact that there was none) is appended to the
backup (write-ahead), so ``--rollback BACKUP`` restores the table exactly: replaced items are
put back, created ones deleted. Progress is checkpointed per segment beside the backup, so an
interrupted run continues with ``--resume`` (its counts are those of the resumed run; records
the first run wrote count as already migrated); re-running after completion changes nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from atlas_codex.ground import naming
from atlas_codex.jobs.store.table import CHILD_COUNTS_OF, job_to_wire_item, plain_item
from atlas_codex_local.legacy import LegacyConversionError, convert, is_canonical

DEFAULT_SEGMENTS: Final = 4
DEFAULT_MAX_WRITES_PER_S: Final = 50.0
PAGE_SIZE: Final = 100


class MigrationError(Exception):
    """A refusal or failure with a message for the operator; the command exits 1."""


@dataclass
class Report:
    scanned: int = 0
    migrated: int = 0
    already_canonical: int = 0
    already_migrated: int = 0
    unconvertible: list[dict[str, Any]] = field(default_factory=list)
    unmapped_fields: int = 0
    restored: int = 0
    """Canonical jobs copied from a source table the jobs table lacked (--restore-missing)."""
    already_present: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "scanned": self.scanned,
            "migrated": self.migrated,
            "already_canonical": self.already_canonical,
            "already_migrated": self.already_migrated,
            "unconvertible": len(self.unconvertible),
            "unconvertible_records": self.unconvertible,
            "unmapped_fields": self.unmapped_fields,
            "restored": self.restored,
            "already_present": self.already_present,
        }


class RateLimiter:
    """At most ``rate`` acquisitions per second across threads (a token bucket of one)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = time.monotonic()
        self.lock = threading.Lock()

    def acquire(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            wait = self.next_at - now
            self.next_at = max(now, self.next_at) + self.interval
        if wait > 0:
            time.sleep(wait)


# ---------------------------------------------------------------------------- backup


class Backup:
    """Write-ahead log of what each write replaces, as JSON lines, plus the checkpoint.

    A local path, or ``s3://bucket/key``: then the log is kept in a local working file and
    uploaded at every checkpoint and at the end.
    """

    def __init__(self, location: str, *, s3: Any | None = None, resume: bool = False) -> None:
        self.location = location
        self.s3: Any = s3
        self.lock = threading.Lock()
        if location.startswith("s3://"):
            if s3 is None:
                raise MigrationError("an s3:// backup needs an S3 client")
            bucket, _, key = location.removeprefix("s3://").partition("/")
            if not bucket or not key:
                raise MigrationError(f"{location!r} is not s3://bucket/key")
            self.bucket, self.key = bucket, key
            handle, name = tempfile.mkstemp(prefix="atlas-codex-migrate-", suffix=".jsonl")
            os.close(handle)
            self.path = Path(name)
            if resume:
                self._download(self.key, self.path)
            elif self._s3_exists(self.key):
                raise MigrationError(
                    f"the backup {location} already exists: pass --resume to continue that "
                    "run, or choose another backup"
                )
        else:
            self.bucket = self.key = ""
            self.path = Path(location)
            if not resume and self.path.exists() and self.path.stat().st_size > 0:
                raise MigrationError(
                    f"the backup {location} already exists: pass --resume to continue that "
                    "run, or choose another backup"
                )
            if resume and not self.path.exists():
                raise MigrationError(f"--resume: no backup at {location} to continue")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = self.path.open("a", encoding="utf-8")

    @property
    def checkpoint_path(self) -> Path:
        return self.path.with_name(self.path.name + ".checkpoint.json")

    def record(
        self,
        key: dict[str, Any],
        before: dict[str, Any] | None,
        written_at: dict[str, Any] | None = None,
    ) -> None:
        """``written_at``: the ``updated_at`` of a job copied as it was (--restore-missing), by
        which rollback knows the copy is still the one it wrote."""
        entry: dict[str, Any] = {"key": key, "before": before}
        if written_at is not None:
            entry["written_at"] = written_at
        line = json.dumps(entry, sort_keys=True)
        with self.lock:
            self.file.write(line + "\n")
            self.file.flush()

    def checkpoint(self, state: dict[str, Any]) -> None:
        with self.lock:
            tmp = self.checkpoint_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, sort_keys=True))
            tmp.replace(self.checkpoint_path)
            if self.bucket:
                self.file.flush()
                self.s3.upload_file(str(self.path), self.bucket, self.key)
                self.s3.upload_file(
                    str(self.checkpoint_path), self.bucket, self.key + ".checkpoint.json"
                )

    def load_checkpoint(self) -> dict[str, Any]:
        if self.bucket:
            self._download(self.key + ".checkpoint.json", self.checkpoint_path, missing_ok=True)
        if not self.checkpoint_path.exists():
            return {}
        state: dict[str, Any] = json.loads(self.checkpoint_path.read_text())
        return state

    def close(self) -> None:
        self.file.close()
        if self.bucket:  # the working copy of an s3:// backup: everything is uploaded
            self.s3.upload_file(str(self.path), self.bucket, self.key)

    def _s3_exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
        except Exception:
            return False
        return True

    def _download(self, key: str, path: Path, *, missing_ok: bool = False) -> None:
        try:
            self.s3.download_file(self.bucket, key, str(path))
        except Exception:
            if not missing_ok:
                raise MigrationError(f"--resume: cannot read s3://{self.bucket}/{key}") from None


def read_backup(location: str, *, s3: Any | None = None) -> Iterator[dict[str, Any]]:
    if location.startswith("s3://"):
        if s3 is None:
            raise MigrationError("an s3:// backup needs an S3 client")
        bucket, _, key = location.removeprefix("s3://").partition("/")
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        lines = body.splitlines()
    else:
        try:
            lines = Path(location).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise MigrationError(f"no backup at {location}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry: dict[str, Any] = json.loads(line)
        except ValueError:
            raise MigrationError(f"{location}:{number}: not a backup line") from None
        yield entry


# ---------------------------------------------------------------------------- migration


@dataclass
class Migration:
    dynamodb: Any
    target_table: str
    sources: list[str]
    dry_run: bool = False
    backup: Backup | None = None
    segments: int = DEFAULT_SEGMENTS
    max_writes_per_s: float = DEFAULT_MAX_WRITES_PER_S
    progress: Callable[[Report], None] = lambda report: None
    stop_after: int | None = None
    """Stop (as if interrupted) after this many scanned records: for tests of --resume."""
    restore_missing: bool = False
    """Canonical jobs in a source table other than the jobs table are copied to the jobs
    table when it lacks them (a point-in-time restore's table; docs/RUNBOOK.md); a job the
    jobs table has is never overwritten."""

    def __post_init__(self) -> None:
        self.report = Report()
        self.lock = threading.Lock()
        self.limiter = RateLimiter(self.max_writes_per_s)
        if not self.dry_run and self.backup is None:
            raise MigrationError("a migration that writes needs --backup (or use --dry-run)")

    def run(self, *, resume: bool = False) -> Report:
        state = self.backup.load_checkpoint() if (resume and self.backup) else {}
        self.state: dict[str, Any] = state.get("segments", {})
        self.interrupted = threading.Event()
        errors: list[BaseException] = []

        def segment(source: str, n: int) -> None:
            try:
                self._segment(source, n)
            except BaseException as exc:  # handed to the caller after join
                errors.append(exc)
                self.interrupted.set()

        for source in self.sources:
            threads = [
                threading.Thread(target=segment, args=(source, n), name=f"migrate-{n}")
                for n in range(self.segments)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                self._checkpoint()
                raise errors[0]
            if self.interrupted.is_set():
                break
        self._checkpoint()
        return self.report

    def _segment(self, source: str, segment: int) -> None:
        name = f"{source}#{segment}"
        saved = self.state.get(name)
        if saved == "done":
            return
        kwargs: dict[str, Any] = {"ExclusiveStartKey": saved} if saved else {}
        while not self.interrupted.is_set():
            try:
                page = self.dynamodb.scan(
                    TableName=source,
                    Segment=segment,
                    TotalSegments=self.segments,
                    Limit=PAGE_SIZE,
                    ConsistentRead=True,
                    **kwargs,
                )
            except self.dynamodb.exceptions.ResourceNotFoundException:
                raise MigrationError(f"the source table {source} does not exist") from None
            for item in page["Items"]:
                self._one(item, source)
                if self.stop_after is not None and self.report.scanned >= self.stop_after:
                    self.interrupted.set()
                    return  # the page is incomplete: no checkpoint past it
            with self.lock:
                self.state[name] = page.get("LastEvaluatedKey", "done")
            self._checkpoint()
            if "LastEvaluatedKey" not in page:
                return
            kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}

    def _one(self, item: dict[str, Any], source: str) -> None:
        if CHILD_COUNTS_OF in item:  # a batch's counter item, not a job: nothing to migrate
            return
        record = _jsonish(plain_item(item))
        with self.lock:
            self.report.scanned += 1
        if is_canonical(record):
            if self.restore_missing and source != self.target_table:
                self._restore(item)
            else:
                with self.lock:
                    self.report.already_canonical += 1
            self.progress(self.report)
            return
        source_id = str(record.get("jobId") or record.get("id") or record.get("job_id") or "?")
        try:
            conversion = convert(record)
        except LegacyConversionError as exc:
            with self.lock:
                self.report.unconvertible.append(
                    {"id": source_id, "format": exc.format, "reasons": exc.reasons}
                )
            self.progress(self.report)
            return
        with self.lock:
            self.report.unmapped_fields += len(conversion.unmapped)
        if self.dry_run:
            with self.lock:
                self.report.migrated += 1
            self.progress(self.report)
            return
        self._write(job_to_wire_item(conversion.job))
        self.progress(self.report)

    def _write(self, new: dict[str, Any]) -> None:
        key = {"job_id": new["job_id"]}
        self.limiter.acquire()
        before = self.dynamodb.get_item(
            TableName=self.target_table, Key=key, ConsistentRead=True
        ).get("Item")
        if before is not None and "schema_version" in before:
            with self.lock:
                self.report.already_migrated += 1
            return
        assert self.backup is not None
        self.backup.record(key, before)  # write-ahead: the backup knows before the table does
        condition = (
            "attribute_not_exists(job_id)"
            if before is None
            else "attribute_exists(job_id) AND attribute_not_exists(schema_version)"
        )
        try:
            self.dynamodb.put_item(
                TableName=self.target_table, Item=new, ConditionExpression=condition
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            with self.lock:
                self.report.already_migrated += 1
            return
        with self.lock:
            self.report.migrated += 1

    def _restore(self, item: dict[str, Any]) -> None:
        """Copy one canonical job, as it was stored, if the jobs table has no job by its id."""
        key = {"job_id": item["job_id"]}
        self.limiter.acquire()
        present = "Item" in self.dynamodb.get_item(
            TableName=self.target_table, Key=key, ConsistentRead=True, ProjectionExpression="job_id"
        )
        if present:
            with self.lock:
                self.report.already_present += 1
            return
        if not self.dry_run:
            assert self.backup is not None
            # rollback deletes what was copied, and only while it is unchanged
            self.backup.record(key, None, written_at=item.get("updated_at"))
            try:
                self.dynamodb.put_item(
                    TableName=self.target_table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(job_id)",
                )
            except self.dynamodb.exceptions.ConditionalCheckFailedException:
                with self.lock:  # written meanwhile by the service: that one is newer
                    self.report.already_present += 1
                return
        with self.lock:
            self.report.restored += 1

    def _checkpoint(self) -> None:
        if self.backup is None:
            return
        with self.lock:
            state = {"segments": dict(self.state)}
        self.backup.checkpoint(state)


def rollback(dynamodb: Any, target_table: str, entries: Iterator[dict[str, Any]]) -> int:
    """Undo a migration from its backup, newest write first. Returns the entries undone."""
    undone = 0
    for entry in reversed(list(entries)):
        key, before = entry["key"], entry["before"]
        if before is None:
            # Created by the migration: delete it, but only if it is still the migrated record
            # (a copied job: still at the version copied).
            copied = entry.get("written_at")
            condition = "attribute_not_exists(job_id) OR " + (
                "updated_at = :written" if copied else "attribute_exists(migrated_from)"
            )
            try:
                dynamodb.delete_item(
                    TableName=target_table,
                    Key=key,
                    ConditionExpression=condition,
                    **({"ExpressionAttributeValues": {":written": copied}} if copied else {}),
                )
            except dynamodb.exceptions.ConditionalCheckFailedException:
                raise MigrationError(
                    f"{key['job_id']['S']} changed since the migration (it is no longer the "
                    "migrated record); rollback stopped before touching it"
                ) from None
        else:
            dynamodb.put_item(TableName=target_table, Item=before)
        undone += 1
    return undone


def table_checksum(dynamodb: Any, table: str) -> str:
    """A digest of every item of ``table`` (order-independent): equal tables, equal sums."""
    digests: list[str] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = dynamodb.scan(TableName=table, ConsistentRead=True, **kwargs)
        digests.extend(
            hashlib.sha256(json.dumps(item, sort_keys=True).encode()).hexdigest()
            for item in page["Items"]
        )
        if "LastEvaluatedKey" not in page:
            break
        kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    return hashlib.sha256("".join(sorted(digests)).encode()).hexdigest()


def _jsonish(value: Any) -> Any:
    """DynamoDB's Decimals as the ints and floats the legacy engines wrote."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _jsonish(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_jsonish(v) for v in value]
    return value


# ---------------------------------------------------------------------------- command


def register(sub: Any) -> None:
    from atlas_codex_local.ops import add_target_arguments

    parser = sub.add_parser(
        "migrate", help="convert legacy job records to canonical ones (dry-run, backup, rollback)"
    )
    add_target_arguments(parser)
    parser.add_argument(
        "--source",
        action="append",
        metavar="TABLE",
        help="a table holding legacy records (repeatable; default: the stage's jobs table)",
    )
    parser.add_argument("--dry-run", action="store_true", help="convert and count; write nothing")
    parser.add_argument(
        "--restore-missing",
        action="store_true",
        help="also copy canonical jobs from the --source tables that the jobs table lacks "
        "(after a point-in-time restore; never overwrites a job)",
    )
    parser.add_argument("--backup", metavar="PATH|s3://BUCKET/KEY", help="write-ahead backup")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run")
    parser.add_argument("--rollback", metavar="BACKUP", help="restore the table from a backup")
    parser.add_argument("--segments", type=int, default=DEFAULT_SEGMENTS)
    parser.add_argument("--max-writes-per-second", type=float, default=DEFAULT_MAX_WRITES_PER_S)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:

    from botocore.exceptions import BotoCoreError, ClientError

    from atlas_codex_local.ops import OpsError, Target

    target = Target.from_args(args)
    jobs_table = naming.table_name("jobs", args.stage)
    try:
        db = target.client("dynamodb")
        if args.rollback:
            if args.dry_run or args.resume:
                raise MigrationError("--rollback takes neither --dry-run nor --resume")
            undone = rollback(db, jobs_table, read_backup(args.rollback, s3=target.client("s3")))
            _emit(args, {"rolled_back": undone}, f"rolled back {undone} writes in {jobs_table}")
            return 0
        if args.restore_missing and not args.source:
            raise MigrationError(
                "--restore-missing copies from another table: name it with --source TABLE"
            )
        if not args.dry_run and not args.backup:
            raise MigrationError("pass --backup PATH|s3://... (or --dry-run to write nothing)")
        if args.dry_run and args.resume:
            raise MigrationError("--dry-run writes no checkpoint to --resume from")
        backup = (
            Backup(args.backup, s3=target.client("s3"), resume=args.resume)
            if args.backup and not args.dry_run
            else None
        )
        migration = Migration(
            dynamodb=db,
            target_table=jobs_table,
            sources=args.source or [jobs_table],
            dry_run=args.dry_run,
            backup=backup,
            segments=args.segments,
            max_writes_per_s=args.max_writes_per_second,
            progress=_progress_bar(db, args.source or [jobs_table], quiet=args.json),
            restore_missing=args.restore_missing,
        )
        try:
            report = migration.run(resume=args.resume)
        finally:
            if backup is not None:
                backup.close()
        if not args.json:
            print(file=sys.stderr)
        verb = "would migrate" if args.dry_run else "migrated"
        lines = [
            f"scanned {report.scanned}: {verb} {report.migrated}, already canonical "
            f"{report.already_canonical}, already migrated {report.already_migrated}, "
            f"unconvertible {len(report.unconvertible)}"
            + (
                f"; {'would restore' if args.dry_run else 'restored'} {report.restored} "
                f"missing jobs, {report.already_present} already present"
                if args.restore_missing
                else ""
            ),
            *(
                f"  {u['id']} ({u['format'] or 'unknown format'}): {'; '.join(u['reasons'])}"
                for u in report.unconvertible
            ),
        ]
        if args.dry_run:
            lines.append("dry run: nothing was written")
        elif backup is not None:
            lines.append(f"backup: {args.backup} (undo with --rollback {args.backup})")
        _emit(args, {"dry_run": args.dry_run, **report.as_dict()}, "\n".join(lines))
        return 0
    except (MigrationError, OpsError) as exc:
        print(f"atlas-codex migrate: {exc}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as exc:
        print(f"atlas-codex migrate: {exc}", file=sys.stderr)
        return 1


def _emit(args: argparse.Namespace, data: Any, human: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else human)


def _progress_bar(db: Any, sources: list[str], *, quiet: bool) -> Callable[[Report], None]:
    if quiet:
        return lambda report: None
    total = 0
    for source in sources:
        try:
            total += int(db.describe_table(TableName=source)["Table"].get("ItemCount", 0))
        except Exception:
            total = 0
            break
    lock = threading.Lock()

    def show(report: Report) -> None:
        with lock:
            done = report.scanned
            if total:
                filled = min(30, 30 * done // total)
                bar = f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{total}"
            else:
                bar = f"{done} scanned"
            print(
                f"\r{bar}  migrated {report.migrated}  unconvertible {len(report.unconvertible)}",
                end="",
                file=sys.stderr,
                flush=True,
            )

    return show
