"""Where the real services live for tests, and what to do when one is missing.

Outside CI a missing PostgreSQL or Redis skips the tests that need it, with the reason; with
CI=true it fails them, so a CI run can never turn green by skipping its integration layer.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get(
    "BILLING_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _per_worker(url: str) -> str:
    """The Redis database of this pytest-xdist worker: gw0 keeps the configured one, gwN takes
    the one 2N below it (mod 16), so parallel workers never flush each other's database."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    offset = 2 * int(worker.removeprefix("gw") or 0)
    base, _, db = url.rpartition("/")
    return f"{base}/{(int(db or 0) - offset) % 16}" if offset else url


REDIS_URL = _per_worker(os.environ.get("BILLING_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
# The broker database of the end-to-end tests: flushed by them, so never the same as REDIS_URL
# (and, for two checkouts testing on one machine at once, different per checkout).
BROKER_URL = _per_worker(os.environ.get("BILLING_TEST_BROKER_URL", "redis://127.0.0.1:6379/14"))
IN_CI = os.environ.get("CI", "").lower() == "true"


def service_missing(name: str, error: BaseException) -> None:
    message = f"{name} is not reachable ({type(error).__name__}: {error})"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it", pytrace=False)
    pytest.skip(f"{message}; start it to run this test")


def check_postgres() -> None:
    engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        service_missing("PostgreSQL", exc)
    finally:
        engine.dispose()


def check_redis() -> None:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except Exception as exc:
        service_missing("Redis", exc)
    finally:
        client.close()


@contextmanager
def scratch_postgres_database(prefix: str = "billing_test") -> Iterator[str]:
    """A new, empty PostgreSQL database for the duration of the block; dropped afterwards."""
    check_postgres()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
