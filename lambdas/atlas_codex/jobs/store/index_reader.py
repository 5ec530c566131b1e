"""Reads of a write-sharded index: every shard queried, the pages merged in key order.

A value of a sharded index (one owner, one status) lives under :data:`tables.INDEX_SHARDS`
partition keys (``tables.shard_keys``). A page of it is the first ``limit`` entries of the
shards merged by the index's sort key; its cursor holds, per shard, where that shard's next
entry starts (``None``: from its beginning; :data:`DONE`: nothing is left in it).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

from atlas_codex.ground.table_specs import JOBS, Index, shard_keys

BATCH_GET_MAX: Final = 100
"""Keys one BatchGetItem may ask for (DynamoDB's limit)."""
DONE: Final = "done"
"""A shard's cursor entry once every entry of it was handed out."""

ShardPosition = dict[str, str] | str | None
"""Where a shard's next entry starts: its last key read (plain strings), None or DONE."""


@dataclass(frozen=True)
class ShardedPage:
    items: list[dict[str, Any]]
    """The index entries (keys and projected attributes, DynamoDB's wire form), in order."""
    positions: list[ShardPosition] | None
    """Where the next page starts, per shard; None when every shard is read to its end."""


@dataclass
class _Shard:
    key: str
    position: ShardPosition
    items: list[dict[str, Any]] = field(default_factory=list)
    more: bool = True
    """DynamoDB has entries of this shard beyond ``items``."""


def key_attributes(index: Index) -> tuple[str, ...]:
    """The attributes that locate one entry of ``index`` (what an exclusive start key holds)."""
    names = (JOBS.partition_key, index.partition_key, index.sort_key)
    return tuple(n for n in names if n)


def query_sharded(
    db: Any,
    *,
    table: str,
    index: Index,
    value: str,
    limit: int,
    newest_first: bool,
    positions: Sequence[ShardPosition] | None = None,
    sort_condition: tuple[str, str] | None = None,
    filters: str | None = None,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> ShardedPage:
    """The first ``limit`` entries of ``value`` across its shards, after ``positions``.

    ``sort_condition`` is a key condition on the sort key (``("<", ":before")``, with its
    value in ``values``); ``filters`` a filter expression on projected attributes.
    """
    if index.sharded_from is None or index.sort_key is None:
        raise ValueError(f"{index.name} is not a sharded index with a sort key")
    keys = shard_keys(value)
    positions = list(positions) if positions is not None else [None] * len(keys)
    if len(positions) != len(keys):
        raise ValueError("the cursor does not match the index's shards")
    shards = [_Shard(key, position) for key, position in zip(keys, positions, strict=True)]
    attr_names = {"#pk": index.partition_key, **(names or {})}
    condition = "#pk = :pk"
    if sort_condition is not None:
        attr_names["#sk"] = index.sort_key
        condition += f" AND #sk {sort_condition[0]} {sort_condition[1]}"

    def read(shard: _Shard) -> None:
        """The shard's next ``limit`` entries (that pass the filter), or all it has left."""
        if shard.position == DONE:
            shard.more = False
            return
        start = _wire_key(shard.position) if isinstance(shard.position, dict) else None
        while len(shard.items) < limit:
            query: dict[str, Any] = {
                "TableName": table,
                "IndexName": index.name,
                "KeyConditionExpression": condition,
                "ExpressionAttributeNames": attr_names,
                "ExpressionAttributeValues": {":pk": {"S": shard.key}, **(values or {})},
                "ScanIndexForward": not newest_first,
                "Limit": limit - len(shard.items) if filters is None else limit,
            }
            if filters is not None:
                query["FilterExpression"] = filters
            if start is not None:
                query["ExclusiveStartKey"] = start
            out = db.query(**query)
            shard.items.extend(out.get("Items", []))
            start = out.get("LastEvaluatedKey")
            if not start:
                shard.more = False
                return

    # The shards are read side by side: a listing waits for one query, not eight.
    with ThreadPoolExecutor(len(shards), thread_name_prefix="shard") as pool:
        list(pool.map(read, shards))
    sort_key = index.sort_key

    def order(item: Mapping[str, Any]) -> tuple[str, str]:
        return (item[sort_key]["S"], item[JOBS.partition_key]["S"])

    tagged = [
        [(order(item), n, i) for i, item in enumerate(shard.items[:limit])]
        for n, shard in enumerate(shards)
    ]
    merged = heapq.merge(*tagged, reverse=newest_first)
    taken: list[tuple[int, int]] = [(n, i) for _, n, i in _first(merged, limit)]
    last_taken: dict[int, int] = {}
    for n, i in taken:
        last_taken[n] = i
    attributes = key_attributes(index)
    next_positions: list[ShardPosition] = []
    for n, shard in enumerate(shards):
        if n in last_taken:
            i = last_taken[n]
            if i == len(shard.items) - 1 and not shard.more:
                next_positions.append(DONE)
            else:
                item = shard.items[i]
                next_positions.append({a: item[a]["S"] for a in attributes})
        elif not shard.items and not shard.more:
            next_positions.append(DONE)
        else:
            next_positions.append(shard.position)
    items = [shards[n].items[i] for n, i in taken]
    done = all(p == DONE for p in next_positions)
    return ShardedPage(items=items, positions=None if done else next_positions)


def _first(merged: Any, limit: int) -> list[tuple[Any, int, int]]:
    out: list[tuple[Any, int, int]] = []
    for entry in merged:
        out.append(entry)
        if len(out) == limit:
            break
    return out


def _wire_key(position: Mapping[str, str]) -> dict[str, Any]:
    return {k: {"S": v} for k, v in position.items()}


def check_positions(
    raw: object,
    index: Index,
    value: str,
    check_value: Callable[[str, str], None],
) -> list[ShardPosition]:
    """A cursor's per-shard positions, if they are ours for ``value`` on ``index``: one per
    shard, each None, DONE or exactly the index's key attributes with the shard's own key and
    well-formed values (``check_value(name, value)`` raises ValueError); ValueError otherwise.
    A forged key never reaches DynamoDB."""
    keys = shard_keys(value)
    if not isinstance(raw, list) or len(raw) != len(keys):
        raise ValueError("not a cursor of this listing")
    attributes = set(key_attributes(index))
    positions: list[ShardPosition] = []
    for key, entry in zip(keys, raw, strict=True):
        if entry is None or entry == DONE:
            positions.append(entry)
            continue
        if not isinstance(entry, dict) or set(entry) != attributes:
            raise ValueError("not a cursor of this listing")
        if not all(isinstance(v, str) for v in entry.values()):
            raise ValueError("not a cursor of this listing")
        if entry[index.partition_key] != key:
            raise ValueError("not a cursor of this listing")
        for name, v in entry.items():
            if name != index.partition_key:
                check_value(name, v)
        positions.append(dict(entry))
    if all(p == DONE for p in positions):
        raise ValueError("not a cursor of this listing")
    return positions


def batch_get_jobs(db: Any, table: str, job_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The whole job items of ``job_ids``, in their order (strongly consistent; unprocessed
    keys asked again; a job gone since, by its TTL, left out). The indexes project keys and
    a few attributes only: a listing reads its records here."""
    found: dict[str, dict[str, Any]] = {}
    for first in range(0, len(job_ids), BATCH_GET_MAX):
        keys = [{JOBS.partition_key: {"S": i}} for i in job_ids[first : first + BATCH_GET_MAX]]
        request: Any = {table: {"Keys": keys, "ConsistentRead": True}}
        while request:
            out = db.batch_get_item(RequestItems=request)
            for item in out["Responses"].get(table, []):
                found[item[JOBS.partition_key]["S"]] = item
            request = out.get("UnprocessedKeys") or None
    return [found[i] for i in job_ids if i in found]
