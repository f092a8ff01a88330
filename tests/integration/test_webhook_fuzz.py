"""Thousands of random and mutated requests: never a 500, and a refused request changes nothing.

The app runs in uvicorn on a thread (one keep-alive connection) on a real database, and
processes what it accepts at once, so the handlers see the mutated content too: no accepted
event may leave a handler error behind (it would sit RECEIVED with a last_error).
"""

from __future__ import annotations

import base64
import itertools
import json
import string
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from billing.bootstrap import Container
from billing.store.models import Debit, Mandate, MandateChange, Notification, WebhookEvent
from billing.webhooks.app import ReceiverConfig, create_app
from tests import payout_samples
from tests.integration.sandbox_fixtures import WEBHOOK_PASSWORD, WEBHOOK_USERNAME
from tests.integration.test_webhook_receiver import ThreadServer
from tests.seed_samples import SAMPLES, sample

AUTH = (WEBHOOK_USERNAME, WEBHOOK_PASSWORD)
MAX_BODY = 16 * 1024
EC, PAYOUTS = "/webhooks/juspay", "/webhooks/juspay/payouts"
FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same inputs on every run: a failure here is reproducible
)


class Fuzzed:
    def __init__(self, container: Container) -> None:
        self.container = container
        self.failures: list[str] = []
        self.server = ThreadServer(
            create_app(
                sessions=container.sessions,
                config=ReceiverConfig(WEBHOOK_USERNAME, WEBHOOK_PASSWORD, MAX_BODY),
                enqueue=self.enqueue,
                clock=container.clock,
            )
        )
        self.client = httpx.Client(base_url=self.server.start(), timeout=10)

    def enqueue(self, pk: int) -> None:
        try:
            self.container.webhook_events().process(pk)
        except Exception as exc:
            self.failures.append(f"{type(exc).__name__}: {exc}")
            raise

    def snapshot(self) -> tuple[int, ...]:
        with self.container.sessions() as session:
            return tuple(
                session.scalar(select(func.count()).select_from(model)) or 0
                for model in (WebhookEvent, Mandate, MandateChange, Debit, Notification)
            )

    def post(self, path: str, body: bytes, **options: Any) -> int:
        """Post and check the invariants; returns the status."""
        before = self.snapshot()
        status = self.client.post(path, content=body, **options).status_code
        assert status in (200, 400, 401, 413, 422), status
        after = self.snapshot()
        if status != 200:
            assert after == before, "a refused request changed stored state"
        else:
            assert after[0] - before[0] in (0, 1)
        return status


@pytest.fixture
def fuzzed(db_url: str, make_container: Callable[..., Container]) -> Iterator[Fuzzed]:
    fuzzed = Fuzzed(make_container(db_url, juspay_api_key="k", juspay_merchant_id="m"))
    with fuzzed.client:
        yield fuzzed
    fuzzed.server.stop()
    with fuzzed.container.sessions() as session:
        crashed = session.scalars(
            select(WebhookEvent).where(
                WebhookEvent.state == "RECEIVED", WebhookEvent.last_error.is_not(None)
            )
        ).all()
    assert [(e.event_name, e.last_error) for e in crashed] == []
    assert fuzzed.failures == []


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["", "true", "21", "1e999", "1.001", "2021-12-18T10:15:35Z", "1639802535"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


def retype(value: object) -> st.SearchStrategy[object]:
    """What Juspay's loose typing (or a bug) could turn a value into."""
    options: list[object] = [None, "", str(value), [value], {"v": value}]
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        options.append(int(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        options += [float(value), -value, value * 10**15]
    return st.sampled_from(options) | JSON


def paths(node: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a decoded JSON document, containers and leaves alike."""
    found: list[tuple[Any, ...]] = []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in items:
        found.append((*prefix, key))
        found += paths(child, (*prefix, key))
    return found


@st.composite
def mutated(draw: st.DrawFn, names: list[str]) -> bytes:
    """A sample with a fresh id and one to three fields, anywhere in it, deleted, retyped or
    replaced (each field equally likely, so most land in the content, not the envelope)."""
    body: dict[str, Any] = sample(draw(st.sampled_from(names)))
    body["id"] = f"evt_fuzz_{next(EVENT_IDS)}"
    for _ in range(draw(st.integers(1, 3))):
        # Deepest first: hypothesis favours the first choices, and those should be leaves of
        # the content, not the envelope (whose refusals the other tests cover).
        where = sorted(paths(body), key=len, reverse=True)
        *parents, key = draw(st.sampled_from(where))
        node: Any = body
        for step in parents:
            node = node[step]
        action = draw(st.sampled_from(["delete", "retype", "replace"]))
        if action == "delete" and isinstance(node, dict):
            del node[key]
        elif action == "retype":
            node[key] = draw(retype(node[key]))
        else:
            node[key] = draw(JSON)
    return json.dumps(body).encode()


EVENT_IDS = itertools.count()  # fresh ids, so that examples are not duplicates of each other
PAYOUTS_SAMPLES = [payout_samples.sample(name) for name in payout_samples.WEBHOOKS]


@st.composite
def payout_events(draw: st.DrawFn) -> bytes:
    """One of Juspay's payout webhook samples with one field (of the envelope or of `info`)
    retyped."""
    body: dict[str, Any] = json.loads(json.dumps(draw(st.sampled_from(PAYOUTS_SAMPLES))))
    body["id"] = f"evt_fuzz_{next(EVENT_IDS)}"
    key = draw(st.sampled_from([*body, *(f"info.{k}" for k in body["info"])]))
    target, _, leaf = key.rpartition(".")
    node = body["info"] if target else body
    node[leaf] = draw(retype(node[leaf]))
    return json.dumps(body).encode()


@settings(FUZZ, max_examples=150)
@given(body=st.binary(max_size=256) | JSON.map(lambda v: json.dumps(v).encode()))
def test_random_bytes_and_random_json_are_refused_cleanly(fuzzed: Fuzzed, body: bytes) -> None:
    for path in (EC, PAYOUTS):
        fuzzed.post(path, body, auth=AUTH)


@settings(FUZZ, max_examples=400)
@given(body=mutated(sorted(SAMPLES)))
def test_mutated_samples_are_stored_or_refused_naming_a_field(fuzzed: Fuzzed, body: bytes) -> None:
    if fuzzed.post(EC, body, auth=AUTH) == 200:
        assert fuzzed.post(EC, body, auth=AUTH) == 200  # a repeat: stored once


@settings(FUZZ, max_examples=150)
@given(body=payout_events())
def test_mutated_payout_events_are_stored_or_refused(fuzzed: Fuzzed, body: bytes) -> None:
    fuzzed.post(PAYOUTS, body, auth=AUTH)


@settings(FUZZ, max_examples=150)
@given(
    header=st.text(string.ascii_letters + string.digits + string.punctuation + " ", max_size=40)
    | st.builds(lambda b: "Basic " + base64.b64encode(b).decode(), st.binary(max_size=40))
    | st.builds(
        lambda u, p: "Basic " + base64.b64encode(f"{u}:{p}".encode()).decode(),
        st.sampled_from([WEBHOOK_USERNAME, "", "x"]) | st.text(max_size=10),
        st.sampled_from([WEBHOOK_PASSWORD, WEBHOOK_PASSWORD[:-1], ""]) | st.text(max_size=10),
    )
)
def test_anything_but_the_credentials_is_401(fuzzed: Fuzzed, header: str) -> None:
    right = "Basic " + base64.b64encode(f"{WEBHOOK_USERNAME}:{WEBHOOK_PASSWORD}".encode()).decode()
    body = SAMPLES["MANDATE_CREATED"].replace(b"evt_V2_a2f8", f"evt_{uuid.uuid4().hex}".encode())
    header = header.strip()  # h11 refuses to send surrounding blanks
    status = fuzzed.post(EC, body, headers={"authorization": header} if header else {})
    assert status == (200 if header == right else 401)


def test_an_oversize_body_is_413_and_changes_nothing(fuzzed: Fuzzed) -> None:
    assert fuzzed.post(EC, b"{" + b" " * MAX_BODY + b"}", auth=AUTH) == 413
