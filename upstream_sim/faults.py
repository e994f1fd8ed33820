"""A fault plan for every simulated upstream: error statuses, delays and malformed bodies.

Crawlers must survive rate limits (429 with ``Retry-After``), server errors, slow answers and
broken payloads, and tests need those to happen on request N, not by chance. A plan is an
ordered list of rules; each matches a path prefix and fires for its next ``times`` matching
requests, then is used up (``query`` narrows a rule to requests whose query string holds
those parameters, for a test that must hit one of several concurrent requests to the same
path). The first rule that matches and still has shots left fires, so
``[429 x2, 500 x1]`` on one prefix gives two 429s, then one 500, then normal answers.

Rule actions (``delay`` combines with either of the others):

* ``status``: answer with that status and a small JSON body, without calling the upstream;
  ``retry_after`` adds the header (seconds).
* ``malformed="invalid_json"``: the real answer cut in half (a truncated body).
* ``malformed="wrong_type"``: the real answer, still valid JSON, with one field's type changed
  (a string becomes ``0``; anything else becomes its JSON text as a string, e.g. ``5 -> "5"``).
  The field is ``field`` (first object holding that key) or, by default, the first field of the
  first object inside the first non-empty array: one room of a page, not the envelope. A bare
  array of scalars (CBHours ``get_months``) has its first element changed instead.
* ``malformed="unstorable_text"``: the real answer with ``\\u0000``, a lone ``\\ud800`` and a
  lone ``\\udc00`` escaped into the middle of one string field (chosen like ``wrong_type``'s):
  valid JSON that neither PostgreSQL (NUL) nor UTF-8 (lone surrogates) can store as it is.
* ``malformed="set_value"``: the real answer with one field (chosen likewise) set to ``value``
  (any JSON value): a well-typed but impossible value, such as the date ``2025-02-30T10:00``
  or an age of ``99999``.

Content faults and a slow body (``bench/faults.py`` drives them; each also combines with
``delay``, not with ``status``):

* ``rewrite="nul_subject"``: the real answer (JSON) with a NUL byte put inside the first room
  subject (``room_subject`` or ``subject``): one bad room in an otherwise good page.
* ``rewrite="empty_followers"``: the real followers page (HTML) with every follower row, the
  count and the paging links cut out: a logged-in page that lists nobody and says nothing.
* ``slow_body``: the real (or rewritten) answer trickled out in chunks over that many seconds.
"""

import asyncio
import logging
import re
import threading
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

import msgspec
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from upstream_sim.middleware import UpstreamMiddleware

_log = logging.getLogger(__name__)


class FaultRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One rule of a fault plan (also the JSON body items of ``POST /_sim/faults``).

    Attributes:
        prefix: Fires on request paths starting with this, as the client sent them.
        query: Fires only if the request's query string holds every ``name=value`` pair of
            this one (in any order, among others), e.g. ``action=get_activity&username=amy``.
        times: How many matching requests it fires on before it is used up.
        status: Answer with this status instead of calling the upstream.
        retry_after: ``Retry-After`` header value in seconds (with ``status`` only).
        delay: Seconds to wait before answering (alone, or before the other action).
        malformed: Damage the real answer: ``invalid_json``, ``wrong_type``,
            ``unstorable_text`` or ``set_value``.
        field: The key to corrupt; default: first field of the first record.
        value: For ``set_value``, the JSON value the field is set to.
        rewrite: Change the real answer's content: ``nul_subject`` or ``empty_followers``.
        slow_body: Seconds over which the real answer's body is trickled out in chunks.
    """

    prefix: str
    query: str | None = None
    times: Annotated[int, msgspec.Meta(ge=1)] = 1
    status: Annotated[int, msgspec.Meta(ge=100, le=599)] | None = None
    retry_after: Annotated[int, msgspec.Meta(ge=0)] | None = None
    delay: Annotated[float, msgspec.Meta(ge=0, le=60)] = 0.0
    malformed: Literal["invalid_json", "wrong_type", "unstorable_text", "set_value"] | None = None
    field: str | None = None
    value: Any = None
    rewrite: Literal["nul_subject", "empty_followers"] | None = None
    slow_body: Annotated[float, msgspec.Meta(ge=0, le=60)] = 0.0

    def __post_init__(self) -> None:
        """Reject rules that would do nothing or contradict themselves."""
        if self.status is not None and self.malformed is not None:
            raise ValueError("a fault rule sets status or malformed, not both")
        acts = self.status is not None or self.malformed is not None or self.rewrite is not None
        if not acts and self.delay == 0 and self.slow_body == 0:
            raise ValueError("a fault rule needs status, malformed, rewrite, slow_body or delay")
        _check_content_faults(self)
        if self.retry_after is not None and self.status is None:
            raise ValueError("retry_after needs a status")
        if (self.value is not None) != (self.malformed == "set_value"):
            raise ValueError("a set_value fault needs a value, and only it takes one")
        if self.query is not None and not parse_qsl(self.query):
            raise ValueError(f"query {self.query!r} holds no name=value pair")

    def matches(self, path: str, query: str) -> bool:
        """Whether a request for ``path`` with this raw ``query`` string is one to fire on."""
        if not path.startswith(self.prefix):
            return False
        if self.query is None:
            return True
        sent = set(parse_qsl(query, keep_blank_values=True))
        return set(parse_qsl(self.query, keep_blank_values=True)) <= sent


class FaultState(msgspec.Struct, frozen=True, kw_only=True):
    """A rule and how many more requests it will fire on."""

    rule: FaultRule
    remaining: int


class _ArmedRule:
    """A rule plus its shots left; mutable, so it stays private to the plan's lock."""

    __slots__ = ("remaining", "rule")

    def __init__(self, rule: FaultRule) -> None:
        self.rule = rule
        self.remaining = rule.times


class FaultPlan:
    """The active rules with their remaining counts; thread-safe."""

    def __init__(self) -> None:
        """Create an empty plan (no faults)."""
        self._lock = threading.Lock()
        self._rules: list[_ArmedRule] = []

    def set(self, rules: list[FaultRule]) -> None:
        """Replace the plan."""
        with self._lock:
            self._rules = [_ArmedRule(rule) for rule in rules]

    def clear(self) -> None:
        """Remove every rule."""
        self.set([])

    def take(self, path: str, query: str = "") -> FaultRule | None:
        """Use up one shot of the first live rule matching ``path`` and ``query``, if any."""
        with self._lock:
            for armed in self._rules:
                if armed.remaining > 0 and armed.rule.matches(path, query):
                    armed.remaining -= 1
                    return armed.rule
        return None

    def state(self) -> list[FaultState]:
        """The rules with their remaining counts, in plan order."""
        with self._lock:
            return [FaultState(rule=a.rule, remaining=a.remaining) for a in self._rules]


class FaultMiddleware(UpstreamMiddleware):
    """ASGI middleware that applies a :class:`FaultPlan` to every request it sees."""

    def __init__(self, app: ASGIApp, *, plan: FaultPlan, exclude_prefix: str) -> None:
        """Wrap ``app``, consulting ``plan`` (arguments as :class:`UpstreamMiddleware`'s)."""
        super().__init__(app, exclude_prefix=exclude_prefix)
        self._plan = plan

    async def handle(self, scope: HTTPScope, receive: Receive, send: Send, path: str) -> None:
        """Fire the matching rule, if any, around the real answer."""
        rule = self._plan.take(path, scope.get("query_string", b"").decode("latin-1"))
        if rule is None:
            await self.app(scope, receive, send)
            return
        if rule.delay:
            await asyncio.sleep(rule.delay)
        if rule.status is not None:
            await _send_error(send, rule.status, rule.retry_after)
        elif rule.rewrite is not None or rule.slow_body:
            await _rewrite_and_send(self.app, scope, receive, send, rule, path)
        elif rule.malformed is None:
            await self.app(scope, receive, send)
        else:
            status, headers, body = await _capture(self.app, scope, receive)
            if rule.malformed == "invalid_json":
                await _send(send, status, headers, body[: len(body) // 2])
                return
            try:
                corrupted = corrupt_one_field(body, rule.field, rule.malformed, rule.value)
            except ValueError as exc:
                # The answer is already captured (Litestar counts it as started), so the plan
                # mistake must be answered here; a 500 naming it beats a silent pass-through.
                _log.error("fault rule %s cannot apply to %s: %s", rule, path, exc)
                await _send_error(send, 500, None, f"fault plan error: {exc}")
                return
            await _send(send, status, headers, corrupted)


# Stands for the unstorable escapes while the document is encoded (msgspec cannot encode them).
_UNSTORABLE_MARK = "~sim-unstorable~"
_UNSTORABLE_ESCAPES = b"\\u0000\\ud800 \\udc00"


def corrupt_one_field(
    body: bytes, field: str | None, how: str = "wrong_type", value: Any = None
) -> bytes:
    """Return ``body`` (JSON) with one field damaged ``how``, as the module docstring describes.

    Raises:
        ValueError: ``body`` is not JSON or holds no field to corrupt (a plan mistake).
    """
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ValueError("wrong_type fault on a response that is not JSON") from exc
    target = _find_object(document, field) if field else _first_record(document)
    if target is None and not field and isinstance(document, dict) and document:
        target = document
    if target is None and not field and isinstance(document, list) and document:
        document[0] = _damaged(document[0], how, value)
    elif target is None:
        raise ValueError(f"{how} fault found no field {field or '(any)'} to corrupt")
    else:
        key = field or next(iter(target))
        target[key] = _damaged(target[key], how, value)
    return msgspec.json.encode(document).replace(_UNSTORABLE_MARK.encode(), _UNSTORABLE_ESCAPES)


def _damaged(old: Any, how: str, value: Any) -> Any:
    if how == "set_value":
        return value
    if how == "unstorable_text":
        if not isinstance(old, str):
            raise ValueError("unstorable_text fault needs a string field")
        return f"{old[: len(old) // 2]}{_UNSTORABLE_MARK}{old[len(old) // 2 :]}"
    return _retyped(old)


def _retyped(value: Any) -> Any:
    return 0 if isinstance(value, str) else msgspec.json.encode(value).decode()


def _find_object(node: Any, field: str) -> dict[str, Any] | None:
    if isinstance(node, dict):
        if field in node:
            return node
        children: Any = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = _find_object(child, field)
        if found is not None:
            return found
    return None


def _first_record(node: Any) -> dict[str, Any] | None:
    if isinstance(node, list):
        if node and isinstance(node[0], dict) and node[0]:
            return node[0]
        children: Any = node
    elif isinstance(node, dict):
        children = node.values()
    else:
        return None
    for child in children:
        found = _first_record(child)
        if found is not None:
            return found
    return None


async def _capture(
    app: ASGIApp, scope: Scope, receive: Receive
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Run ``app`` and collect its whole response instead of sending it."""
    status = 500
    headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def collect(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, collect)
    return status, headers, b"".join(chunks)


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    kept = [(name, value) for name, value in headers if name.lower() != b"content-length"]
    kept.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": kept})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _send_error(
    send: Send, status: int, retry_after: int | None, detail: str = "fault injected by upstream_sim"
) -> None:
    headers = [(b"content-type", b"application/json")]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    body = msgspec.json.encode({"status": status, "detail": detail})
    await _send(send, status, headers, body)


# -- content faults and slow bodies (rewrite, slow_body) -------------------------------------

_SUBJECT_KEYS = ("room_subject", "subject")
_SLOW_CHUNKS = 8
_EMPTY_FOLLOWERS_CUTS = (
    re.compile(r"<li class='follower'[^>]*>.*?</li>", re.DOTALL),
    re.compile(r"<span class='followers_count'[^>]*>.*?</span>", re.DOTALL),
    re.compile(r"<ul class='paging'>.*?</ul>", re.DOTALL),
)


def _check_content_faults(rule: FaultRule) -> None:
    """``rewrite`` and ``slow_body`` change a real answer, so they exclude ``status``."""
    if rule.status is not None and (rule.rewrite is not None or rule.slow_body):
        raise ValueError("rewrite and slow_body change the real answer: not with status")
    if rule.rewrite is not None and rule.malformed is not None:
        raise ValueError("a fault rule sets malformed or rewrite, not both")


def rewrite_body(body: bytes, rewrite: str) -> bytes:
    """Return ``body`` changed as ``rewrite`` says (see the module docstring).

    Raises:
        ValueError: The body holds nothing to rewrite (a plan mistake).
    """
    if rewrite == "empty_followers":
        text = body.decode("utf-8")
        if "<li class='follower'" not in text:
            raise ValueError("empty_followers fault on a page without follower rows")
        for cut in _EMPTY_FOLLOWERS_CUTS:
            text = cut.sub("", text)
        return text.encode("utf-8")
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ValueError("nul_subject fault on a response that is not JSON") from exc
    for key in _SUBJECT_KEYS:
        target = _find_object(document, key)
        if target is not None and isinstance(target[key], str):
            subject = target[key]
            target[key] = subject[:1] + "\x00" + subject[1:]
            return msgspec.json.encode(document)
    raise ValueError("nul_subject fault found no room subject")


async def _rewrite_and_send(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, rule: FaultRule, path: str
) -> None:
    status, headers, body = await _capture(app, scope, receive)
    if rule.rewrite is not None:
        try:
            body = rewrite_body(body, rule.rewrite)
        except (ValueError, UnicodeDecodeError) as exc:
            _log.error("fault rule %s cannot apply to %s: %s", rule, path, exc)
            await _send_error(send, 500, None, f"fault plan error: {exc}")
            return
    if not rule.slow_body:
        await _send(send, status, headers, body)
        return
    kept = [(name, value) for name, value in headers if name.lower() != b"content-length"]
    kept.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": kept})
    step = -(-len(body) // _SLOW_CHUNKS) or 1
    for start in range(0, max(len(body), 1), step):
        await asyncio.sleep(rule.slow_body / _SLOW_CHUNKS)
        chunk = body[start : start + step]
        more = start + step < len(body)
        await send({"type": "http.response.body", "body": chunk, "more_body": more})
