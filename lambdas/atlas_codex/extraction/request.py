"""The request the engine executes: where to read (URLs, crawl options), what to extract
(a JSON schema, CSS selectors, an instruction, a preset) and how (render, cost ceiling,
model tier). It is the client's own choice, validated strictly; the job record keeps it
whole as ``Job.request``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, Self

from pydantic import AfterValidator, Field, JsonValue, model_validator

from atlas_codex.ground import limits
from atlas_codex.ground.policy import ModelTier
from atlas_codex.ground.presets import PRESETS, Preset, schema_of
from atlas_codex.ground.values import (
    FieldError,
    FieldName,
    HttpUrlStr,
    StrictModel,
    storable,
    unstorable_numbers,
)


def _json_depth(value: Any, depth: int = 0) -> int:
    if isinstance(value, dict):
        return max((_json_depth(v, depth + 1) for v in value.values()), default=depth + 1)
    if isinstance(value, list):
        return max((_json_depth(v, depth + 1) for v in value), default=depth + 1)
    return depth


JSON_TYPES: Final = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
_SUBSCHEMA_LISTS: Final = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_MAPS: Final = ("properties", "patternProperties", "$defs", "definitions")
_SUBSCHEMAS: Final = ("items", "additionalProperties", "not", "contains", "if", "then", "else")
_STRINGS: Final = ("title", "description", "format", "pattern", "$ref", "$id", "$schema")
_COUNTS: Final = (
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
)
_NUMBERS: Final = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


def schema_keyword_problem(schema: Any, path: str = "") -> tuple[str, str] | None:
    """The first keyword of ``schema`` whose value the JSON Schema meta-schema refuses (a type
    that is no JSON type, ``properties`` that are not schemas, a ``required`` that is not a
    list of names...), as (its path, the problem); None when every keyword it checks holds.
    Keywords it does not know are left alone, as the meta-schema leaves them."""

    def at(key: str) -> str:
        return f"{path}.{key}" if path else key

    if isinstance(schema, bool):
        return None
    if not isinstance(schema, dict):
        return path or "json_schema", "a schema must be an object (or true/false)"
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        wrong = [k for k in kinds if not isinstance(k, str) or k not in JSON_TYPES]
        if wrong or not kinds:
            return at("type"), (
                f"{wrong[0]!r} is not a JSON type (one of {', '.join(sorted(JSON_TYPES))})"
                if wrong
                else "'type' lists no type"
            )
    for key in _STRINGS:
        if key in schema and not isinstance(schema[key], str):
            return at(key), f"'{key}' must be a string"
    for key in _COUNTS:
        value = schema.get(key)
        if key in schema and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            return at(key), f"'{key}' must be a whole number, 0 or more"
    for key in _NUMBERS:
        value = schema.get(key)
        if key in schema and (not isinstance(value, int | float) or isinstance(value, bool)):
            return at(key), f"'{key}' must be a number"
    required = schema.get("required")
    if "required" in schema and (
        not isinstance(required, list) or not all(isinstance(r, str) for r in required)
    ):
        return at("required"), "'required' must be a list of property names"
    if "enum" in schema and not isinstance(schema["enum"], list):
        return at("enum"), "'enum' must be a list of values"
    for key in _SUBSCHEMA_MAPS:
        if key not in schema:
            continue
        if not isinstance(schema[key], dict):
            return at(key), f"'{key}' must be an object of schemas"
        for name, sub in schema[key].items():
            problem = schema_keyword_problem(sub, f"{at(key)}.{name}")
            if problem is not None:
                return problem
    for key in _SUBSCHEMA_LISTS:
        if key not in schema:
            continue
        if not isinstance(schema[key], list) or not schema[key]:
            return at(key), f"'{key}' must be a non-empty list of schemas"
        for n, sub in enumerate(schema[key]):
            problem = schema_keyword_problem(sub, f"{at(key)}[{n}]")
            if problem is not None:
                return problem
    for key in _SUBSCHEMAS:
        if key in schema:
            problem = schema_keyword_problem(schema[key], at(key))
            if problem is not None:
                return problem
    return None


def meta_schema_problem(schema: Any) -> tuple[str, str] | None:
    """Where ``schema`` breaks the JSON Schema 2020-12 meta-schema, as (its path, the
    problem); None when it is a valid schema. Every schema is held to 2020-12 (what the
    extraction reads), whatever draft its ``$schema`` names: a draft-07 tuple ``items`` is
    refused with the path, not read wrongly. The complete check, behind
    :func:`schema_keyword_problem`'s plainer words for the common mistakes; nothing is
    fetched (the meta-schema and its vocabularies ship with the library)."""
    from jsonschema.exceptions import best_match

    error = best_match(_meta_validator().iter_errors(schema))
    if error is None:
        return None
    where = "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
    ).lstrip(".")
    return (
        where or "json_schema",
        f"the JSON Schema 2020-12 meta-schema refuses it: {error.message}",
    )


@functools.lru_cache(maxsize=256)
def _meta_schema_problem_of(text: str) -> tuple[str, str] | None:
    """:func:`meta_schema_problem` of a schema's canonical JSON, remembered: a stored job's
    schema is checked again each time its record is read (up to ~0.1 s for the largest)."""
    return meta_schema_problem(json.loads(text))


@functools.cache
def _meta_validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(Draft202012Validator.META_SCHEMA)


def _check_json_schema(value: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    size = len(text.encode())
    if size > limits.MAX_JSON_SCHEMA_BYTES:
        raise ValueError(
            f"JSON schema is {size} bytes; the limit is {limits.MAX_JSON_SCHEMA_BYTES}"
        )
    depth = _json_depth(value)
    if depth > limits.MAX_JSON_SCHEMA_DEPTH:
        raise ValueError(
            f"JSON schema nests {depth} levels; the limit is {limits.MAX_JSON_SCHEMA_DEPTH}"
        )
    for where, problem in unstorable_numbers(value):
        raise ValueError(f"the number at {where} {problem}")
    refused = schema_keyword_problem(value) or _meta_schema_problem_of(text)
    if refused is not None:
        raise FieldError(*refused)
    kind = value.get("type", "object")
    if kind != "object" and not (isinstance(kind, list) and "object" in kind):
        raise ValueError("the top level of a JSON schema must be of type 'object'")
    props = value.get("properties", {})
    if not isinstance(props, dict):
        raise ValueError("'properties' must be an object")
    required = value.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise ValueError("'required' must be a list of property names")
    return value


JsonSchemaDoc = Annotated[dict[str, JsonValue], AfterValidator(_check_json_schema)]


@functools.lru_cache(maxsize=1024)
def _css_problem(selector: str) -> str | None:
    if any(ord(c) < 0x20 or c == "\x7f" for c in selector):
        return "a CSS selector must not contain control characters"
    from selectolax.lexbor import LexborHTMLParser, SelectolaxError

    try:
        LexborHTMLParser("<p></p>").css(selector)  # the engine the extraction uses
    except (SelectolaxError, ValueError):
        return (
            f"{selector!r} is not a CSS selector the extraction engine can compile "
            "(XPath and jQuery extensions such as :contains are not CSS)"
        )
    return None


def check_css_selector(selector: str) -> str:
    problem = _css_problem(selector)
    if problem is not None:
        raise ValueError(problem)
    return selector


CssSelector = Annotated[
    str,
    Field(min_length=1, max_length=limits.MAX_CSS_SELECTOR_CHARS),
    AfterValidator(check_css_selector),
]


class SelectorField(StrictModel):
    """One field of a selector schema: a CSS selector, and what to take from the match."""

    selector: CssSelector
    attribute: Annotated[str, Field(pattern=r"^[A-Za-z_:][-A-Za-z0-9_:.]{0,63}$")] | None = None
    type: Literal["string", "integer", "number", "boolean", "url", "html"] = "string"
    many: bool = False
    fields: dict[FieldName, SelectorField] | None = None
    """Nested items: ``selector`` is then the base of each item and these its fields."""

    @model_validator(mode="after")
    def _nested_fields_take_no_attribute(self) -> Self:
        if self.fields is not None and (self.attribute is not None or self.type != "string"):
            raise FieldError(
                "fields", "a field with nested 'fields' cannot also set 'attribute' or 'type'"
            )
        if self.fields is not None and not self.fields:
            raise FieldError("fields", "'fields' must name at least one field")
        return self


def _selector_stats(fields: Mapping[str, SelectorField], depth: int = 1) -> tuple[int, int]:
    count, deepest = 0, depth
    for f in fields.values():
        count += 1
        if f.fields:
            c, d = _selector_stats(f.fields, depth + 1)
            count, deepest = count + c, max(deepest, d)
    return count, deepest


class SelectorSchema(StrictModel):
    """Direct extraction: an optional base selector for repeated items, and their fields."""

    base_selector: CssSelector | None = None
    fields: dict[FieldName, SelectorField] = Field(min_length=1)

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        count, depth = _selector_stats(self.fields)
        if count > limits.MAX_SELECTOR_FIELDS:
            raise FieldError(
                "fields", f"{count} selector fields; the limit is {limits.MAX_SELECTOR_FIELDS}"
            )
        if depth > limits.MAX_SELECTOR_DEPTH:
            raise FieldError(
                "fields",
                f"selector fields nest {depth} levels; the limit is {limits.MAX_SELECTOR_DEPTH}",
            )
        return self


UrlPattern = Annotated[str, Field(min_length=1, max_length=512)]


class CrawlOptions(StrictModel):
    """Navigation-aware crawling. Patterns are shell-style globs matched against full URLs."""

    max_pages: Annotated[int, Field(ge=1, le=limits.MAX_CRAWL_PAGES)] = 10
    max_depth: Annotated[int, Field(ge=0, le=limits.MAX_CRAWL_DEPTH)] = 2
    include: Annotated[list[UrlPattern], Field(max_length=limits.MAX_URL_PATTERNS)] = Field(
        default_factory=list
    )
    exclude: Annotated[list[UrlPattern], Field(max_length=limits.MAX_URL_PATTERNS)] = Field(
        default_factory=list
    )
    same_site: bool = True
    use_sitemap: bool = False
    follow_pagination: bool = True


Instruction = Annotated[str, Field(min_length=1, max_length=limits.MAX_INSTRUCTION_CHARS)]
MaxCostUsd = Annotated[
    float,
    Field(gt=0, le=limits.MAX_JOB_COST_USD, allow_inf_nan=False),
    AfterValidator(storable),
]


RenderMode = Literal["auto", "always", "never"]


class JobRequest(StrictModel):
    """What to extract, from where: the part of a job the client chose."""

    urls: Annotated[list[HttpUrlStr], Field(min_length=1, max_length=limits.MAX_URLS_PER_JOB)]
    json_schema: JsonSchemaDoc | None = None
    selectors: SelectorSchema | None = None
    instruction: Instruction | None = None
    crawl: CrawlOptions | None = None
    webhook_url: HttpUrlStr | None = None
    respect_robots_txt: bool = True
    max_cost_usd: MaxCostUsd | None = None
    """A hard ceiling on the job's model spend: no call starts that could cross it."""
    model_tier: ModelTier | None = None
    """Start the model router at this tier instead of the one it would choose."""
    include_evidence: bool = False
    """Put each field's evidence in the response (it is always stored)."""
    preset: Preset | None = None
    """A built-in schema by name (``product``): it becomes the job's ``json_schema``."""
    render: RenderMode = "auto"
    """Render pages in a browser: ``auto`` when the server's HTML is an app shell (or its
    extraction came back empty), ``always``, or ``never``."""
    wait_for: CssSelector | None = None
    """A rendered page is read once this CSS selector matches (else when its network is
    idle), within the render time limit."""

    @model_validator(mode="before")
    @classmethod
    def _preset_schema(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("preset") is None:
            return data
        preset = data["preset"]
        if not isinstance(preset, str) or preset not in PRESETS:
            return data  # the field's own validation names the allowed values
        schema = schema_of(preset)
        if data.get("json_schema") not in (None, schema):
            raise FieldError("preset", "give 'preset' or 'json_schema', not both")
        if data.get("selectors") is not None:
            raise FieldError("preset", "give 'preset' or 'selectors', not both")
        return {**data, "json_schema": schema}


def needs_model(request: JobRequest, job_type: str) -> str | None:
    """The field that makes a job need a model (None: deterministic strategies can answer
    it): an instruction alone, or an ai-process job without selectors."""
    if request.selectors is not None:
        return None
    if job_type == "ai-process":
        return "type"
    if request.instruction is not None and request.json_schema is None:
        return "instruction"
    return None
