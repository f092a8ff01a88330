"""Shared fixtures: migrated databases (SQLite file and PostgreSQL), a real Redis, a clock."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

from billing.bootstrap import Container, build
from billing.config import load_settings
from billing.store import migrate
from billing.store.models import Base
from tests.services import REDIS_URL, check_redis, scratch_postgres_database

# Fixture modules shared by the layers: the sandbox over HTTP, and the billing harness on it.
pytest_plugins = ["tests.integration.sandbox_fixtures", "tests.integration.billing_harness"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`make test` runs two workers), the end-to-end tests, which start
    worker processes of their own and measure nothing but outcomes, run one at a time per
    group: the chaos suites (private services on free ports) in one, the others in another, so
    the two long groups can go to different xdist workers (each has its own Redis databases)."""
    for item in items:
        if "tests/e2e/test_chaos.py" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("chaos"))
        elif "tests/e2e/" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("e2e"))


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "billing.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(_sqlite_template: Path, tmp_path: Path) -> str:
    """A SQLite file migrated to head (copied from a template migrated once per session)."""
    path = tmp_path / "billing.db"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def _postgres_database() -> Iterator[str]:
    with scratch_postgres_database() as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture
def postgres_url(_postgres_database: str) -> str:
    """The session's PostgreSQL database, migrated to head and emptied before each test."""
    engine = create_engine(_postgres_database)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return _postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def redis_url() -> str:
    check_redis()
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()
    return REDIS_URL


class FakeClock:
    """A clock the test moves by hand; services read time only through it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now

    def set(self, now: datetime) -> datetime:
        self.now = now
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2027, 3, 1, 0, 0, tzinfo=UTC))


ClockFactory = Callable[[datetime], FakeClock]


@pytest.fixture
def make_container(clock: FakeClock) -> Iterator[Callable[..., Container]]:
    """Build the real composition root on a given database with the test's clock."""
    built: list[Container] = []

    def make(database_url: str, **overrides: object) -> Container:
        settings = load_settings(database_url=database_url, **overrides)
        container = build(settings, clock=clock)
        built.append(container)
        return container

    yield make
    for container in built:
        container.close()


@pytest.fixture
def app(db_url: str, make_container: Callable[..., Container]) -> Container:
    """The composition root on a migrated database, once per backend (SQLite, PostgreSQL)."""
    return make_container(db_url)
