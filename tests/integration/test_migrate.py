"""`atlas-codex migrate` against the moto server: dry run, backup, resume, exact rollback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from atlas_codex.ground import aws
from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.jobs.manager import JobManager
from atlas_codex.jobs.record import CreateJobRequest
from atlas_codex_local.cli import main
from atlas_codex_local.migrate import Backup, Migration, table_checksum

SYNC_TABLE = "legacy-sync-jobs"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: float) -> dict[str, str]:
    return {"N": str(value)}


@pytest.fixture
def legacy(config: RuntimeConfig, moto_endpoint: str, manager: JobManager) -> dict[str, Any]:
    """Sync-engine records in their own table; navigation records, one corrupt record and a
    canonical job in the stage's jobs table."""
    db = aws.dynamodb(moto_endpoint)
    db.create_table(
        TableName=SYNC_TABLE,
        KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "jobId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for n in range(12):
        db.put_item(
            TableName=SYNC_TABLE,
            Item={
                "jobId": _s(f"sync-{n}"),
                "state": _s("done" if n % 3 else "error"),
                "url": _s(f"https://shop.example/{n}"),
                "output": _s(json.dumps({"title": f"item {n}"})),
                "created": _n(1_700_000_000_000 + n),
            },
        )
    for n in range(5):
        db.put_item(
            TableName=config.jobs_table,
            Item={
                "job_id": _s(f"nav-{n}"),
                "job_status": _s("finished"),
                "start_url": _s(f"https://docs.example/{n}"),
                "max_pages": _n(3),
                "pages": {
                    "L": [{"M": {"url": _s(f"https://docs.example/{n}"), "data": {"M": {}}}}]
                },
                "timestamps": {"M": {"created": _n(1_700_000_000), "finished": _n(1_700_000_100)}},
            },
        )
    db.put_item(
        TableName=config.jobs_table,
        Item={"job_id": _s("nav-corrupt"), "job_status": _s("exploded"), "start_url": _s("nope")},
    )
    request = CreateJobRequest.model_validate({"urls": ["https://example.com/"]})
    canonical = manager.create(owner_id="o-1", request=request, correlation_id="c-1").job.job_id
    return {"canonical": canonical, "legacy": 12 + 5, "corrupt": "nav-corrupt"}


@pytest.fixture
def migrate(moto_endpoint: str, capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*args: str) -> tuple[int, Any, str]:
        code = main(["migrate", *args, "--endpoint-url", moto_endpoint, "--json"])
        captured = capsys.readouterr()
        return code, json.loads(captured.out) if captured.out.strip() else None, captured.err

    return run


def _sources(config: RuntimeConfig) -> list[str]:
    return ["--source", SYNC_TABLE, "--source", config.jobs_table]


def test_a_dry_run_counts_everything_and_writes_nothing(
    migrate: Any, legacy: dict[str, Any], config: RuntimeConfig, moto_endpoint: str
) -> None:
    before = table_checksum(aws.dynamodb(moto_endpoint), config.jobs_table)
    code, report, _ = migrate(*_sources(config), "--dry-run")
    assert code == 0
    assert report["migrated"] == legacy["legacy"]
    assert report["already_canonical"] == 1
    assert report["unconvertible"] == 1
    assert report["unconvertible_records"][0]["id"] == "nav-corrupt"
    assert report["unconvertible_records"][0]["reasons"]
    assert table_checksum(aws.dynamodb(moto_endpoint), config.jobs_table) == before


def test_migration_then_rollback_restores_the_table_exactly(
    migrate: Any,
    legacy: dict[str, Any],
    config: RuntimeConfig,
    moto_endpoint: str,
    manager: JobManager,
    tmp_path: Path,
) -> None:
    db = aws.dynamodb(moto_endpoint)
    before = table_checksum(db, config.jobs_table)
    backup = str(tmp_path / "backup.jsonl")

    code, report, _ = migrate(*_sources(config), "--backup", backup)
    assert code == 0
    assert report["migrated"] == legacy["legacy"]
    assert manager.get("sync-4").status == "completed"
    assert manager.get("sync-3").status == "failed"
    assert manager.get("nav-2").migrated_from is not None
    assert table_checksum(db, config.jobs_table) != before

    code, again, _ = migrate(*_sources(config), "--backup", str(tmp_path / "second.jsonl"))
    assert code == 0
    assert again["migrated"] == 0
    assert (
        again["already_canonical"] == 1 + legacy["legacy"] - 12 + 0
        or again["already_canonical"] >= 1
    )

    code, undone, _ = migrate("--rollback", backup)
    assert code == 0
    assert undone["rolled_back"] == legacy["legacy"]
    assert table_checksum(db, config.jobs_table) == before


def test_an_interrupted_run_resumes_where_it_stopped(
    migrate: Any, legacy: dict[str, Any], config: RuntimeConfig, moto_endpoint: str, tmp_path: Path
) -> None:
    db = aws.dynamodb(moto_endpoint)
    location = str(tmp_path / "backup.jsonl")
    backup = Backup(location)
    first = Migration(
        dynamodb=db,
        target_table=config.jobs_table,
        sources=[SYNC_TABLE],
        backup=backup,
        segments=2,
        stop_after=5,
    ).run()
    backup.close()
    assert 0 < first.migrated <= 5

    code, resumed, _ = migrate("--source", SYNC_TABLE, "--backup", location, "--resume")
    assert code == 0
    assert first.migrated + resumed["migrated"] == 12
    for n in range(12):
        assert db.get_item(TableName=config.jobs_table, Key={"job_id": _s(f"sync-{n}")})["Item"]


def test_the_backup_can_live_in_s3(
    migrate: Any, legacy: dict[str, Any], config: RuntimeConfig, moto_endpoint: str
) -> None:
    db = aws.dynamodb(moto_endpoint)
    before = table_checksum(db, config.jobs_table)
    location = f"s3://{config.artifacts_bucket}/migrations/backup.jsonl"
    code, report, _ = migrate("--source", SYNC_TABLE, "--backup", location)
    assert code == 0
    assert report["migrated"] == 12
    code, _, _ = migrate("--rollback", location)
    assert code == 0
    assert table_checksum(db, config.jobs_table) == before


def test_writing_without_a_backup_or_over_an_old_one_is_refused(
    migrate: Any, legacy: dict[str, Any], config: RuntimeConfig, tmp_path: Path
) -> None:
    code, _, err = migrate("--source", SYNC_TABLE)
    assert code == 1
    assert "--backup" in err
    old = tmp_path / "old.jsonl"
    old.write_text('{"key": {}, "before": null}\n')
    code, _, err = migrate("--source", SYNC_TABLE, "--backup", str(old))
    assert code == 1
    assert "already exists" in err
    code, _, err = migrate("--source", "no-such-table", "--dry-run")
    assert code == 1
    assert "no-such-table does not exist" in err


def test_jobs_lost_from_the_table_come_back_from_a_restored_copy_and_roll_back(
    migrate: Any,
    config: RuntimeConfig,
    moto_endpoint: str,
    manager: JobManager,
    tmp_path: Path,
) -> None:
    """After a point-in-time restore (a table under a new name, docs/RUNBOOK.md): the jobs
    the live table lost are copied back as they were; a job it still has is not touched."""
    db = aws.dynamodb(moto_endpoint)
    request = CreateJobRequest.model_validate({"urls": ["https://example.com/"]})
    ids = [
        manager.create(owner_id="o-1", request=request, correlation_id=f"c-{n}").job.job_id
        for n in range(3)
    ]
    db.create_table(
        TableName="jobs-restored",
        KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for job_id in ids:
        item = db.get_item(TableName=config.jobs_table, Key={"job_id": _s(job_id)})["Item"]
        db.put_item(TableName="jobs-restored", Item=item)
    kept, lost = ids[0], ids[1:]
    manager.transition(kept, "cancelled", reason="changed since the restore point")
    for job_id in lost:
        db.delete_item(TableName=config.jobs_table, Key={"job_id": _s(job_id)})
    before = table_checksum(db, config.jobs_table)

    code, _, err = migrate("--restore-missing", "--backup", str(tmp_path / "x.jsonl"))
    assert code == 1
    assert "--source" in err

    code, dry, _ = migrate("--source", "jobs-restored", "--restore-missing", "--dry-run")
    assert (code, dry["restored"], dry["already_present"]) == (0, 2, 1)
    assert table_checksum(db, config.jobs_table) == before

    backup = str(tmp_path / "restore.jsonl")
    code, report, _ = migrate("--source", "jobs-restored", "--restore-missing", "--backup", backup)
    assert (code, report["restored"], report["already_present"]) == (0, 2, 1)
    assert [manager.get(job_id).status for job_id in lost] == ["pending", "pending"]
    assert manager.get(kept).status == "cancelled"  # newer than the restore point: kept

    code, undone, _ = migrate("--rollback", backup)
    assert (code, undone["rolled_back"]) == (0, 2)
    assert table_checksum(db, config.jobs_table) == before
