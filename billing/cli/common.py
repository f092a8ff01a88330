"""What every command shares: the lazily built container and the JSON / table output."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import click

from billing.bootstrap import Container, build


class JobError(Exception):
    """The command ran but its job failed: exit 1 with this message (may be empty)."""


@dataclass
class Context:
    debug: bool = False
    _container: Container | None = field(default=None, repr=False)

    @property
    def container(self) -> Container:
        if self._container is None:
            self._container = build()
        return self._container


def container(ctx: click.Context) -> Container:
    obj = ctx.find_object(Context)
    if obj is None:  # invoked without the group (tests calling a sub-command directly)
        obj = Context()
        ctx.obj = obj
    return obj.container


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def echo_json(value: Any) -> None:
    click.echo(json.dumps(_jsonable(value), indent=2, sort_keys=False))


def echo_table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> None:
    rendered = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in rendered]) for i, c in enumerate(columns)]
    header = "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))
    click.echo(header.rstrip())
    for r in rendered:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return str(_jsonable(value))
