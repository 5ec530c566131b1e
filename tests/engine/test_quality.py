"""The quality gate's verdicts, evidence checking, the re-extraction diff, and wall detection."""

from __future__ import annotations

from typing import Any

import pytest

from atlas_codex.engine import evidence, quality
from atlas_codex.engine.pages.blocked import blocked
from atlas_codex.engine.reading.html import parse
from atlas_codex.ground.values import leaves
from atlas_codex.jobs.diff import field_diff
from atlas_codex.jobs.record import PageOutcome

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "price": {"type": "number"},
        "stock": {"type": "string", "enum": ["in", "out"]},
    },
    "required": ["name"],
}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (None, [quality.EMPTY]),
        ({}, [quality.EMPTY]),
        ([], [quality.EMPTY]),
        ({"name": None, "price": None}, [quality.ALL_NULL]),
        ({"name": "", "items": [], "nested": {"a": None}}, [quality.ALL_NULL]),
        ({"name": "Lamp", "price": 12.5}, []),
        (
            {"name": "Lamp", "price": "cheap"},
            ["does not match the schema: $.price: expected number, got str"],
        ),
        (
            {"name": "Lamp", "stock": "maybe"},
            ["does not match the schema: $.stock: 'maybe' is not one of ['in', 'out']"],
        ),
    ],
)
def test_the_gate_names_every_problem(data: Any, expected: list[str]) -> None:
    assert quality.problems(data, SCHEMA) == expected


def test_missing_required_fields_and_truncation_are_problems_too() -> None:
    found = quality.problems(
        {"name": None, "price": 3}, SCHEMA, missing_required=["name"], truncated=True
    )
    assert found == ["required field not found: name", quality.TRUNCATED]
    assert not quality.gave_nothing(found)
    assert quality.gave_nothing(quality.problems({"name": None}, SCHEMA))


def test_leaves_walk_objects_and_lists_by_path() -> None:
    data = {"a": {"b": 1}, "items": [{"name": "x"}, {"name": None}], "empty": []}
    assert list(leaves(data)) == [
        ("a.b", 1),
        ("items[0].name", "x"),
        ("items[1].name", None),
        ("empty", []),
    ]


PAGE = "# Desk lamp\n\nPrice: **12.50 EUR**\n\nA brass lamp with a *linen* shade."


def test_quotes_are_checked_against_the_page_without_case_markup_or_spacing() -> None:
    checked = evidence.check(
        {"name": "Desk lamp", "price": 12.5, "shade": "linen", "colour": None, "sku": "X1"},
        [
            {"field": "name", "quote": "DESK lamp"},
            {"field": "$.price", "quote": "Price: 12.50  EUR"},
            {"field": "shade", "quote": "a linen shade"},
            {"field": "colour", "quote": None},
            {"field": "sku", "quote": "SKU X1"},
        ],
        evidence.haystack([PAGE]),
    )
    assert {k: v.verified for k, v in checked.evidence.items()} == {
        "name": True,
        "price": True,
        "shade": True,
        "sku": False,
    }
    assert checked.missing == ["colour"]  # not found: distinct from a value found null
    assert checked.unverified == ["sku"]


def test_a_value_without_any_quote_is_flagged_and_list_items_take_their_parent_s_quote() -> None:
    checked = evidence.check(
        {"items": [{"name": "Desk lamp"}], "price": 12.5},
        [{"field": "items[0]", "quote": "Desk lamp"}],
        evidence.haystack([PAGE]),
    )
    assert checked.evidence["items[0].name"].verified
    assert checked.unverified == ["price"]
    assert checked.evidence["price"].source == evidence.NO_QUOTE


def test_the_diff_lists_added_removed_and_changed_fields_only() -> None:
    before = {"title": "Lamp", "price": 12, "old": "x", "tags": ["a", "b"]}
    after = {"title": "Lamp", "price": 12.0, "tags": ["a", "c"], "new": True}
    changes = [(c.path, c.change, c.before, c.after) for c in field_diff(before, after)]
    assert changes == [
        ("tags[1]", "changed", "b", "c"),
        ("new", "added", None, True),
        ("old", "removed", "x", None),
    ]
    assert [c.change for c in field_diff(None, {"a": 1})] == ["added", "removed"]
    assert field_diff({"flag": 1}, {"flag": True})[0].change == "changed"


def test_records_with_bare_evidence_strings_still_load() -> None:
    page = PageOutcome.model_validate(
        {
            "url": "https://shop.example/",
            "status": "ok",
            "evidence": {"price": ".price", "name": "json-ld[0].name", "title": "meta.title"},
        }
    )
    assert {k: v.kind for k, v in page.evidence.items()} == {
        "price": "selector",
        "name": "structured-data",
        "title": "structured-data",
    }


ARTICLE = "<p>" + "Solving a captcha is a chore, say our readers. " * 60 + "</p>"


@pytest.mark.parametrize(
    ("html", "code"),
    [
        (
            "<html><head><title>Just a moment...</title></head><body>wait</body></html>",
            "challenge_page",
        ),
        ("<html><body><div class='cf-turnstile'></div>Verify</body></html>", "challenge_page"),
        (
            "<html><head><title>Log in</title></head><body><form><input type=password></form></body></html>",
            "login_wall",
        ),
        (f"<html><head><title>Captcha fatigue</title></head><body>{ARTICLE}</body></html>", None),
        (
            "<html><body><header><form><input type=password></form></header>"
            f"<main>{ARTICLE}</main></body></html>",
            None,
        ),
        ("<html><body><h1>Desk lamp</h1><p>12.50 EUR</p></body></html>", None),
    ],
)
def test_walls_are_told_from_pages_with_content(html: str, code: str | None) -> None:
    found = blocked(parse(html), html)
    assert (found.code if found else None) == code
