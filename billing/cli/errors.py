"""The CLI's last line: any failure becomes ONE line naming the cause and the fix (SPEC §11).

A database or broker error carries a SQL statement, parameters and a multi-line driver
message; none of that reaches the operator's terminal (`--debug` shows the traceback):

    DBAPIError, statement is None    -> database unreachable at URL (reason): start it or fix ...
    "no such table" / UndefinedTable -> database not migrated (no table X): run billing db upgrade
    "no such column" / UndefinedColumn -> schema not at head (...): run billing db upgrade
    other DBAPIError                 -> database error: the driver's first line, no SQL
    kombu / redis / amqp connection  -> broker unreachable at URL (reason): start it or fix ...
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

UPGRADE = "run billing db upgrade"
_NO_TABLE = re.compile(r'no such table: (\S+)|relation "([^"]+)" does not exist')
_NO_COLUMN = re.compile(r"no such column|column .* does not exist|has no column named")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def shown_url(url: str) -> str:
    """The URL with its password hidden (it is printed in an error)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a broker URL SQLAlchemy cannot parse: keep scheme+host
        return re.sub(r"//[^@/]*@", "//***@", url)


def _setting(name: str) -> str:
    from billing.config import SettingsError, load_settings  # noqa: PLC0415

    try:
        return shown_url(str(getattr(load_settings(), name)))
    except SettingsError:
        return "?"


def describe_database_error(exc: DBAPIError) -> str:
    reason = first_line(exc.orig) if exc.orig is not None else first_line(exc)
    if exc.statement is None:  # failed while connecting
        return (
            f"database unreachable at {_setting('database_url')} ({reason}): "
            "start it or fix BILLING_DATABASE_URL"
        )
    table = _NO_TABLE.search(reason)
    if table:
        return f"database not migrated (no table {table.group(1) or table.group(2)}): {UPGRADE}"
    if _NO_COLUMN.search(reason):
        return f"schema not at head ({reason}): {UPGRADE}"
    return f"database error: {reason}"


def _is_broker_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("kombu", "amqp", "redis")


def describe(exc: BaseException) -> str:
    """One line for any exception the CLI did not expect to handle itself."""
    for link in _chain(exc):
        if isinstance(link, DBAPIError):
            return describe_database_error(link)
    for link in _chain(exc):
        if _is_broker_error(link):
            return (
                f"broker unreachable at {_setting('broker_url')} ({first_line(link)}): "
                "start it or fix BILLING_BROKER_URL"
            )
    return first_line(exc)
