"""The model router: the cheapest adequate tier for a job, a fallback chain, exact costs.

* :func:`analyse` maps a job to a tier from things it can measure (input tokens, schema size
  and depth, instruction length and reasoning cues, pages) and says why.
* :func:`chain` turns a tier into models: that tier and the ones above it that the stage
  allows, then the production fallback; each model past its shutdown is replaced by its
  successor (with the reason); no model twice; at most :data:`MAX_CHAIN` models.
* :class:`Router` calls them in order. Before a call: the exact prompt tokens, an estimate,
  and a reservation of the worst case against the budget. After it: the actual cost from the
  response's usage (a failed or truncated call is billed too) replaces the reservation. A
  rate-limited model is cooled down for its ``retry-after``, and a model that keeps failing
  for a while, across invocations of the same process.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Final, Literal

from atlas_codex.accounts.usage import BudgetExceeded, BudgetGuard
from atlas_codex.extraction.result import Failure, Step
from atlas_codex.ground import limits
from atlas_codex.ground.policy import MODEL_TIERS, ModelEntry, ModelPolicy, ModelTier
from atlas_codex.ground.values import utcnow
from atlas_codex.llm import output, tokens
from atlas_codex.llm.catalog import Catalog, Usage, cost_usd

MAX_CHAIN: Final = 4
CONSECUTIVE_FAILURES_TO_COOL: Final = 3
FAILURE_WINDOW_S: Final = 120.0
"""Endpoint failures count toward a cool-down only this long: old failures decay, so three
failures spread over an hour never turn the next one into a minute's pause for everyone."""
COOL_DOWN_S: Final = 60.0
NOT_FOUND_COOL_DOWN_S: Final = 3600.0
"""A model the endpoint says it does not serve is left alone this long."""
TRUNCATION_RETRY_FACTOR: Final = 4
"""A cut answer is asked once more with this many times the output cap (at most the
model's own maximum, and only within the job's ceiling and the budget)."""
MAX_CALL_S: Final = limits.MODEL_CALL_MAX_S
"""One call's timeout at most: the rest of the job's time is for the chain after it."""
MAX_RETRY_AFTER_S: Final = 300.0
DEFAULT_MAX_OUTPUT_TOKENS: Final = 4096
INPUT_MARGIN_TOKENS: Final = 64
"""Added to the counted prompt for the worst case: what a server's own framing may add, so
a ceiling checked against the worst case holds."""
FIT_PASSES: Final = 4
MIN_CALL_S: Final = 2.0
"""Less time than this left before the deadline: no further call starts."""

# Reasoning cues in an instruction: comparisons, calculations, multi-step conditions.
REASONING_CUES: Final = re.compile(
    r"\b(compare|comparison|calculate|compute|sum|total|average|mean|difference|ratio|"
    r"percent(age)?|rank|cheapest|most expensive|best|worst|derive|infer|if\b.+\bthen|"
    r"step[- ]by[- ]step|unless|except when|per (unit|item|kg|month))\b",
    re.IGNORECASE,
)
NANO_MAX_INPUT: Final = 8_000
MINI_MAX_INPUT: Final = 60_000
NANO_MAX_FIELDS: Final = 8
MINI_MAX_FIELDS: Final = 30
MAX_SIMPLE_DEPTH: Final = 2
LONG_INSTRUCTION: Final = 400


@dataclass(frozen=True)
class Decision:
    tier: ModelTier
    reasons: tuple[str, ...]


def schema_shape(schema: dict[str, Any] | None, depth: int = 1) -> tuple[int, int]:
    """(number of properties, nesting depth) of a JSON schema."""
    if not isinstance(schema, dict):
        return 0, depth - 1
    fields, deepest = 0, depth if schema.get("properties") else depth - 1
    for sub in (schema.get("properties") or {}).values():
        fields += 1
        f, d = schema_shape(sub, depth + 1)
        fields, deepest = fields + f, max(deepest, d)
    if isinstance(schema.get("items"), dict):
        f, d = schema_shape(schema["items"], depth)
        fields, deepest = fields + f, max(deepest, d)
    return fields, deepest


def analyse(
    *,
    input_tokens: int,
    schema: dict[str, Any] | None,
    instruction: str | None,
    page_count: int,
    policy: ModelPolicy,
) -> Decision:
    """A deterministic tier for a job, with every reason that raised it."""
    rank = 0
    reasons: list[str] = []

    def need(tier: int, why: str) -> None:
        nonlocal rank
        if tier > rank:
            rank = tier
        reasons.append(f"{why} -> {MODEL_TIERS[tier]}")

    if input_tokens > MINI_MAX_INPUT:
        need(2, f"{input_tokens} input tokens (> {MINI_MAX_INPUT})")
    elif input_tokens > NANO_MAX_INPUT:
        need(1, f"{input_tokens} input tokens (> {NANO_MAX_INPUT})")
    fields, depth = schema_shape(schema)
    if fields > MINI_MAX_FIELDS:
        need(2, f"{fields} schema fields (> {MINI_MAX_FIELDS})")
    elif fields > NANO_MAX_FIELDS:
        need(1, f"{fields} schema fields (> {NANO_MAX_FIELDS})")
    if depth > MAX_SIMPLE_DEPTH:
        need(1, f"schema nested {depth} levels (> {MAX_SIMPLE_DEPTH})")
    if instruction:
        cue = REASONING_CUES.search(instruction)
        if cue:
            need(2, f"the instruction asks for reasoning ({cue.group(0)!r})")
        elif len(instruction) > LONG_INSTRUCTION:
            need(1, f"a {len(instruction)}-character instruction")
        if schema is None:
            need(1, "no schema: the model proposes one first")
    if page_count > 5:
        need(1, f"{page_count} pages")
    if not reasons:
        reasons.append(f"simple extraction ({input_tokens} tokens, {fields} fields) -> nano")
    tier: ModelTier = MODEL_TIERS[rank]
    if tier not in policy.allowed_tiers:
        allowed = [t for t in MODEL_TIERS if t in policy.allowed_tiers]
        below = [t for t in allowed if MODEL_TIERS.index(t) <= rank]
        chosen = below[-1] if below else allowed[0]
        reasons.append(f"the stage does not allow {tier}: {chosen}")
        tier = chosen
    return Decision(tier=tier, reasons=tuple(reasons))


def chain(
    tier: ModelTier, policy: ModelPolicy, catalog: Catalog, today: date
) -> list[tuple[str, list[str]]]:
    """Models to try for ``tier``, each with the reasons it stands where it does."""
    start = MODEL_TIERS.index(tier)
    wanted = [policy.tier_models[t] for t in MODEL_TIERS[start:] if t in policy.allowed_tiers]
    wanted.append(policy.production_fallback)
    out: list[tuple[str, list[str]]] = []
    seen: set[str] = set()
    for name in wanted:
        live, reasons = catalog.live(name, today)
        if live in seen:
            continue
        seen.add(live)
        out.append((live, reasons))
    return out[:MAX_CHAIN]


class Cooldowns:
    """Per process (shared by the invocations one Lambda environment serves): which models
    are paused after their endpoint failed, until when, and why."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.until: dict[str, float] = {}
        self.why: dict[str, str] = {}
        """The failure kind that paused each model (``rate_limited``, ``server_error``...)."""
        self.failures: dict[str, list[float]] = {}
        """When each model's endpoint failed, within the last :data:`FAILURE_WINDOW_S`."""
        self.unserved: set[str] = set()
        self.lock = threading.Lock()

    def cooling(self, model: str) -> float:
        with self.lock:
            return max(0.0, self.until.get(model, 0.0) - self.clock())

    def cause(self, model: str) -> str:
        """The failure kind that paused ``model`` (``server_error`` when unknown)."""
        with self.lock:
            return self.why.get(model, "server_error")

    def failed(self, model: str, retry_after_s: float | None, kind: str = "server_error") -> None:
        with self.lock:
            now = self.clock()
            recent = [t for t in self.failures.get(model, []) if now - t < FAILURE_WINDOW_S]
            recent.append(now)
            self.failures[model] = recent
            pause = 0.0
            if retry_after_s is not None:
                pause = min(retry_after_s, MAX_RETRY_AFTER_S)
            if len(recent) >= CONSECUTIVE_FAILURES_TO_COOL:
                pause = max(pause, COOL_DOWN_S)
            if pause:
                self.until[model] = max(self.until.get(model, 0.0), now + pause)
                self.why[model] = kind

    def missing(self, model: str) -> None:
        """The endpoint does not serve ``model`` (404): unavailable for an hour."""
        with self.lock:
            self.unserved.add(model)
            self.why[model] = "not_found"
            self.until[model] = max(
                self.until.get(model, 0.0), self.clock() + NOT_FOUND_COOL_DOWN_S
            )

    def unavailable(self) -> list[str]:
        """Models the endpoint said it does not serve (health reports them)."""
        with self.lock:
            return sorted(m for m in self.unserved if self.until.get(m, 0.0) > self.clock())

    def succeeded(self, model: str) -> None:
        with self.lock:
            self.failures.pop(model, None)
            self.until.pop(model, None)
            self.why.pop(model, None)
            self.unserved.discard(model)


_COOLING_WHY: Final = {
    "rate_limited": "the endpoint rate-limited it",
    "server_error": "its endpoint kept failing",
    "timeout": "its endpoint kept timing out",
    "connection": "its endpoint could not be reached",
    "not_found": "the endpoint does not serve it",
}


COOLDOWNS: Final = Cooldowns()


@dataclass
class Call:
    """One model request the router may send to several models."""

    messages: Callable[[int | None], list[dict[str, str]]]
    """Builds the messages, the page cut to at most N tokens (None: whole)."""
    schema: dict[str, Any] | None
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS
    reasoning_effort: str | None = "low"
    """For reasoning models (None: the API's default, medium): reading a page for facts, a
    schema or a link needs little thinking, and thinking is billed as output."""
    strict: bool = False
    """Send the schema in strict mode (it is already in the subset strict mode accepts)."""
    owner_id: str | None = None
    ceiling_usd: Decimal | None = None
    """What the job may still spend (its ``max_cost_usd``, or its spend bound, less its spend
    so far): no call starts whose worst case would cross it."""
    ceiling_name: str = "the job's cost ceiling"
    """What sets ``ceiling_usd``, as a refusal names it."""
    gate: bool = False
    """A call the quality gate chooses to make (a wider reading, a stronger tier): held to
    the job's spend bound strictly. A job's own call may go past the bound only to a model
    that stands in for unavailable ones (nothing billed yet), and says so."""
    ceiling_code: str = "cost_ceiling_reached"
    """The client's ceiling (``cost_ceiling_reached``) ends the run when it refuses a model;
    the job's own spend bound (``spend_bound_reached``) only when no model could be sent."""
    expected_output_tokens: int | None = None
    """The answer's expected size when the caller knows better than the schema alone
    (an extraction answer carries an evidence quote per field)."""


@dataclass
class Routed:
    data: Any
    model: str
    attempts: list[Step]
    estimated_usd: Decimal
    actual_usd: Decimal
    warnings: list[str] = field(default_factory=list)
    truncated: bool = False
    """The page was cut to fit the model's window."""


@dataclass(frozen=True)
class CallQuote:
    """What one call is expected to cost before it is sent."""

    model: str
    input_tokens: int
    low_usd: Decimal
    """The input alone, at the first model's price: no answer can cost less."""
    expected_usd: Decimal
    """The router's own pre-call estimate for the first model."""
    high_usd: Decimal
    """Every model of the chain tried, each answering up to its output cap."""
    first_worst_usd: Decimal
    """The first model answering up to its output cap: what a job must be allowed to spend
    for this call to start at all."""
    fallback_worst_usd: Decimal = Decimal(0)
    """The chain's second model answering up to its cap: the fallback a billed failure of
    the first (a refusal, bad JSON, a cut answer) is sent to."""


class RouterFailed(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        attempts: list[Step],
        *,
        cooling: bool = False,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.attempts = attempts
        self.cooling = cooling
        """No model was sent: every one was cooling down (a retry later can do better)."""
        self.retry_after_s = retry_after_s
        """When cooling: the seconds until the first of those models may be called again."""


@dataclass
class _Route:
    """One call's way down its chain: what was tried, billed and refused so far."""

    models: list[tuple[str, list[str]]]
    whole: list[dict[str, str]]
    whole_prompt: int
    queue: list[tuple[str, list[str], int | None]]
    """(model, why it is here, an output cap of its own: a retry of a cut answer)"""
    attempts: list[Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    estimated: Decimal = Decimal(0)
    actual: Decimal = Decimal(0)
    last: tuple[str, str] = ("model_unavailable", "no model could be tried")
    tried: set[str] = field(default_factory=set)
    truncated: bool = False
    budget_refused: list[str] = field(default_factory=list)
    ceiling_message: str = ""
    """Why the job's cost ceiling (or spend bound) refused a model; empty: none did."""
    ceiling_refused: list[str] = field(default_factory=list)
    sent: int = 0
    """Calls sent to a model."""
    called: list[str] = field(default_factory=list)
    """The models a call was sent to, in order (skipped ones are not)."""
    cooled: list[str] = field(default_factory=list)
    """The models skipped because they were cooling down, with why."""
    cooling_left: list[float] = field(default_factory=list)
    """How long each of those still cools, in seconds."""

    def skip(self, model: str, started: Any, kind: str, message: str) -> None:
        self.attempts.append(_skipped(model, started, kind, message))


@dataclass(frozen=True)
class _Sent:
    """One call about to be sent: the model, its prompt, cap and estimate, its reservation."""

    model: str
    entry: ModelEntry
    started: Any
    prompt: int
    max_out: int
    expected: Decimal
    reservation: Any


class Router:
    def __init__(
        self,
        *,
        client: Any,
        catalog: Catalog,
        policy: ModelPolicy,
        budget: BudgetGuard | None,
        cooldowns: Cooldowns = COOLDOWNS,
        today: Callable[[], date] = lambda: utcnow().date(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.catalog = catalog
        self.policy = policy
        self.budget = budget
        self.cooldowns = cooldowns
        self.today = today
        self.clock = clock

    def estimate(
        self, model: str, input_tokens: int, call: Call, max_out: int
    ) -> tuple[Decimal, Decimal]:
        """(expected, worst case) cost of a call: exact input; output as expected from the
        schema (:mod:`atlas_codex.llm.output`, plus a reasoning model's expected thinking,
        capped by ``max_out``), or all of ``max_out`` for the worst case."""
        entry = self.catalog.get(model)
        expected_out = min(
            max_out,
            (
                call.expected_output_tokens
                if call.expected_output_tokens is not None
                else output.expected_tokens(call.schema)
            )
            + (output.reasoning_tokens(call.reasoning_effort)[0] if entry.reasoning else 0),
        )
        expected = cost_usd(entry, Usage(input_tokens=input_tokens, output_tokens=expected_out))
        worst = cost_usd(
            entry,
            Usage(input_tokens=input_tokens + INPUT_MARGIN_TOKENS, output_tokens=max_out),
        )
        return expected, worst

    @staticmethod
    def output_cap(call: Call, entry: ModelEntry, cap: int | None = None) -> int:
        """A model's output cap for ``call``: the answer's cap (or ``cap``, a retry's), plus
        the thinking a reasoning model does before it answers, within the model's maximum."""
        answer = cap or call.max_output_tokens
        thinking = output.reasoning_tokens(call.reasoning_effort)[1] if entry.reasoning else 0
        if cap is not None:  # a retry's cap already holds the thinking
            thinking = 0
        return min(answer + thinking, entry.max_output_tokens)

    def quote(self, call: Call, decision: Decision, *, extra_input_tokens: int = 0) -> CallQuote:
        """The range of what :meth:`run` may spend on ``call``, without sending it.
        ``extra_input_tokens``: input not known yet (a schema the model will propose)."""
        models = chain(decision.tier, self.policy, self.catalog, self.today())
        first: tuple[str, int, Decimal, Decimal, Decimal] | None = None
        fallback: Decimal | None = None
        high = Decimal(0)
        whole_prompt = (
            tokens.prompt_tokens(call.messages(None), call.schema, strict=call.strict)
            + extra_input_tokens
        )
        for model, _ in models:
            entry = self.catalog.get(model)
            max_out = self.output_cap(call, entry)
            prompt = whole_prompt
            room = entry.context_window - max_out
            if prompt > room:
                prompt = room
            expected, worst = self.estimate(model, prompt, call, max_out)
            high += worst
            if first is None:
                low = cost_usd(entry, Usage(input_tokens=prompt, output_tokens=0))
                first = (model, prompt, low, expected, worst)
            elif fallback is None:
                fallback = worst
        if first is None:
            raise RouterFailed("model_unavailable", "no model serves this tier", [])
        model, prompt, low, expected, first_worst = first
        return CallQuote(model, prompt, low, expected, high, first_worst, fallback or Decimal(0))

    def run(self, call: Call, decision: Decision, *, deadline: float) -> Routed:
        """Send ``call`` down the tier's chain: the first model that answers serves. Each
        model is skipped while cooling down, too small for the prompt (when a later one is
        not), over the job's ceiling or bound, or refused by the budget; a cut answer is
        tried once more on the same model with room to finish."""
        models = chain(decision.tier, self.policy, self.catalog, self.today())
        # The whole prompt is the same for every model: built and counted once.
        whole = call.messages(None)
        route = _Route(
            models=models,
            whole=whole,
            whole_prompt=tokens.prompt_tokens(whole, call.schema, strict=call.strict),
            queue=[(m, r, None) for m, r in models],
        )
        while route.queue:
            model, reasons, cap = route.queue.pop(0)
            if model in route.tried and cap is None:
                continue
            route.tried.add(model)
            route.warnings += reasons
            started = utcnow()
            cooling = self.cooldowns.cooling(model)
            if cooling:
                cause = self.cooldowns.cause(model)
                why = _COOLING_WHY.get(cause, "its endpoint kept failing")
                route.skip(model, started, cause, f"cooling down for {cooling:.0f} s: {why}")
                route.cooled.append(f"{model} ({why}; {cooling:.0f} s left)")
                route.cooling_left.append(cooling)
                continue
            if deadline - self.clock() < MIN_CALL_S:
                route.last = ("deadline_exceeded", "no time left for another model call")
                break
            entry = self.catalog.get(model)
            max_out = self.output_cap(call, entry, cap)
            fitted = self._fit_window(call, route, model, entry, max_out, started)
            if fitted is None:
                continue
            messages, prompt = fitted
            expected, worst = self.estimate(model, prompt, call, max_out)
            if not self._within_ceiling(call, route, model, worst, started):
                continue
            reservation = None
            if self.budget is not None:
                try:
                    reservation = self.budget.reserve(worst)
                except BudgetExceeded as exc:
                    route.budget_refused.append(model)
                    route.skip(model, started, "budget_exceeded", exc.message)
                    route.last = ("budget_exceeded", exc.message)
                    continue
            route.estimated += expected
            route.sent += 1
            route.called.append(model)
            sent = _Sent(model, entry, started, prompt, max_out, expected, reservation)
            answer = self._send(call, route, sent, messages, deadline, cap)
            if isinstance(answer, Routed):
                return answer
            if answer == "stop":
                break
        raise self._failed(call, route)

    def _fit_window(
        self,
        call: Call,
        route: _Route,
        model: str,
        entry: ModelEntry,
        max_out: int,
        started: Any,
    ) -> tuple[list[dict[str, str]], int] | None:
        """The messages and their tokens as ``model`` takes them: whole when they fit its
        window; skipped (None) when a later model's window fits them; else cut to fit."""
        prompt = route.whole_prompt
        room = entry.context_window - max_out
        if prompt <= room:
            return route.whole, prompt
        if any(
            self.catalog.get(m).context_window - max_out >= prompt
            for m, _ in route.models
            if m not in route.tried
        ):
            route.skip(
                model,
                started,
                "context_length",
                f"{prompt} input tokens exceed its window ({entry.context_window})",
            )
            return None
        messages, cut = self._fit(call, route.whole, prompt, room)
        route.warnings.append(f"content truncated for {model}: {prompt} -> {cut} input tokens")
        route.truncated = True
        return messages, cut

    def _within_ceiling(
        self, call: Call, route: _Route, model: str, worst: Decimal, started: Any
    ) -> bool:
        """Whether ``model``'s worst case stays within the job's ceiling (or spend bound).
        A model standing in for models that failed unbilled may pass the bound (not a
        ceiling the client set, nor a quality-gate call), with a warning."""
        over = call.ceiling_usd is not None and route.actual + worst > call.ceiling_usd
        stand_in = bool(route.attempts) and not route.actual  # models before it failed unbilled
        if over and call.ceiling_code == "spend_bound_reached" and not call.gate and stand_in:
            # The models quoted could not be used (none billed anything): the job is not
            # left without an answer for a price nobody chose; the record says so.
            route.warnings.append(
                f"{model} stands in for unavailable models at its own price: this call may "
                f"cost up to ${worst:.6f}, beyond the job's spend bound"
            )
            return True
        if not over:
            return True
        assert call.ceiling_usd is not None
        message = (
            f"{call.ceiling_name} leaves ${max(call.ceiling_usd - route.actual, Decimal(0)):.6f};"
            f" a call to {model} may cost up to ${worst:.6f}"
        )
        route.skip(model, started, call.ceiling_code, message)
        route.ceiling_message = message
        route.ceiling_refused.append(model)
        return False

    def _send(
        self,
        call: Call,
        route: _Route,
        sent: _Sent,
        messages: list[dict[str, str]],
        deadline: float,
        cap: int | None,
    ) -> Routed | Literal["next", "stop"]:
        """One call to the model: its answer, or what the chain does after its failure (the
        next model, or stop: another would fail the same way). Every call is billed and
        recorded either way."""
        from atlas_codex.llm.client import ENDPOINT_FAILURES, RETRYABLE_ELSEWHERE, ModelCallFailed

        model, entry = sent.model, sent.entry
        try:
            completion = self.client.complete(
                model=model,
                messages=messages,
                schema=call.schema,
                max_output_tokens=sent.max_out,
                timeout_s=self._timeout(deadline, route.models, route.tried),
                reasoning_effort=call.reasoning_effort if entry.reasoning else None,
                strict=call.strict,
            )
        except ModelCallFailed as failure:
            spent = cost_usd(entry, failure.usage) if failure.usage else Decimal(0)
            self._settle(call, route, sent, spent)
            if failure.kind == "not_found":
                self.cooldowns.missing(model)
            elif failure.kind in ENDPOINT_FAILURES:
                self.cooldowns.failed(model, failure.retry_after_s, failure.kind)
            route.attempts.append(
                _attempt(
                    model,
                    sent.started,
                    sent.prompt,
                    failure.usage,
                    sent.expected,
                    spent,
                    failure.kind,
                    failure.message,
                )
            )
            route.last = (_code(failure.kind), failure.message)
            if failure.kind == "truncated":
                # Once more on the same model with room to finish; the next model with the
                # same cap would be cut the same way, so the chain stops after that.
                larger = min(entry.max_output_tokens, sent.max_out * TRUNCATION_RETRY_FACTOR)
                if cap is None and larger > sent.max_out:
                    why = (
                        f"{model}: the answer was cut at {sent.max_out} tokens; again with {larger}"
                    )
                    route.queue.insert(0, (model, [why], larger))
                    return "next"
                return "stop"
            return "next" if failure.kind in RETRYABLE_ELSEWHERE else "stop"
        spent = cost_usd(entry, completion.usage)
        self._settle(call, route, sent, spent)
        self.cooldowns.succeeded(model)
        route.attempts.append(
            _attempt(model, sent.started, sent.prompt, completion.usage, sent.expected, spent)
        )
        return Routed(
            completion.data,
            model,
            route.attempts,
            route.estimated,
            route.actual,
            route.warnings,
            route.truncated,
        )

    def _settle(self, call: Call, route: _Route, sent: _Sent, spent: Decimal) -> None:
        """What a call was billed: on the route, and against the budget it reserved."""
        route.actual += spent
        if sent.reservation is not None and self.budget is not None:
            self.budget.commit(sent.reservation, spent, call.owner_id)

    def _failed(self, call: Call, route: _Route) -> RouterFailed:
        """Why no model answered, the cause a client acts on first: the budget when it
        refused every model it was asked about, the ceiling the client set, the bound when
        nothing was sent; the models tried named."""
        code, message = route.last
        cooling = bool(route.cooled) and not route.sent and code == "model_unavailable"
        if cooling:
            # Every model was paused after its endpoint failed: never "no model" (which lets
            # the deterministic path serve as if no key were configured), but the cause.
            first = (
                route.attempts[0].error.code
                if route.attempts and route.attempts[0].error
                else "model_error"
            )
            code = first
            message = "every model of the chain is cooling down: " + "; ".join(route.cooled)
        if route.budget_refused and len(route.budget_refused) == len(route.tried) - len(
            route.ceiling_refused
        ):
            code = "budget_exceeded"
        if route.ceiling_message and call.ceiling_code == "cost_ceiling_reached":
            # Every model the ceiling did not refuse failed: the job stops at its ceiling.
            code, message = "cost_ceiling_reached", route.ceiling_message
        elif route.ceiling_message and not route.sent and not route.budget_refused:
            code, message = call.ceiling_code, route.ceiling_message
        elif route.ceiling_message:
            # The cause is what the models that were sent (or the budget) did; the bound only
            # kept the rest of the chain from being tried.
            message = f"{message}; {route.ceiling_message}"
        named = list(dict.fromkeys(route.called))
        if named:
            message = f"{message} (models called: {', '.join(named)})"
        return RouterFailed(
            code,
            message,
            route.attempts,
            cooling=cooling,
            retry_after_s=min(route.cooling_left) if cooling else None,
        )

    def _timeout(
        self, deadline: float, models: list[tuple[str, list[str]]], tried: set[str]
    ) -> float:
        """This call's share of the time left: the rest is kept for the models after it (a
        hung model must not use the whole deadline), and no call waits past MAX_CALL_S."""
        left = deadline - self.clock() - 0.5
        after = sum(1 for m, _ in models if m not in tried)
        return max(1.0, min(MAX_CALL_S, left / (after + 1)))

    @staticmethod
    def _fit(
        call: Call, whole: list[dict[str, str]], prompt: int, room: int
    ) -> tuple[list[dict[str, str]], int]:
        """The messages with the page cut until the whole prompt (``whole``, of ``prompt``
        tokens) fits ``room`` tokens. The page is only part of the last message (the task and
        the URL are the rest), so each pass cuts by what the previous one still overflowed."""
        messages = whole
        framing = prompt - tokens.count(whole[-1]["content"])
        limit = max(256, room - framing - 64)
        for _ in range(FIT_PASSES):
            messages = call.messages(limit)
            prompt = tokens.prompt_tokens(messages, call.schema, strict=call.strict)
            if prompt <= room or limit == 256:
                break
            limit = max(256, limit - (prompt - room) - 16)
        return messages, prompt


CEILING_CODES: Final = frozenset({"budget_exceeded", "cost_ceiling_reached", "spend_bound_reached"})


def _code(kind: str) -> str:
    return {
        "rate_limited": "model_rate_limited",
        "server_error": "model_error",
        "timeout": "model_timeout",
        "connection": "model_error",
        "refusal": "model_refusal",
        "invalid_output": "invalid_model_output",
        "truncated": "model_output_truncated",
        "context_length": "context_length_exceeded",
        "auth": "model_auth_failed",
        "bad_request": "model_error",
        "not_found": "model_not_found",
    }.get(kind, "model_error")


def _skipped(model: str, started: Any, kind: str, message: str) -> Step:
    return Step(
        strategy="model",
        model=model,
        started_at=started,
        ended_at=utcnow(),
        error=Failure(
            code=kind if kind in CEILING_CODES else _code(kind),
            message=message,
        ),
    )


def _attempt(
    model: str,
    started: Any,
    prompt: int,
    usage: Usage | None,
    expected: Decimal,
    spent: Decimal,
    kind: str | None = None,
    message: str | None = None,
) -> Step:
    return Step(
        strategy="model",
        model=model,
        started_at=started,
        ended_at=utcnow(),
        input_tokens=usage.input_tokens if usage else 0,
        cached_input_tokens=usage.cached_input_tokens if usage else 0,
        output_tokens=usage.output_tokens if usage else 0,
        estimated_cost_usd=float(expected),
        cost_usd=float(spent),
        error=Failure(code=_code(kind), message=message or kind) if kind else None,
    )
