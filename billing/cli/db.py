"""`billing db`: the schema, through Alembic."""

from __future__ import annotations

import click

from billing.cli.common import container
from billing.store import migrate


@click.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.pass_context
def upgrade(ctx: click.Context, revision: str) -> None:
    """Apply migrations up to REVISION (idempotent)."""
    url = container(ctx).settings.database_url
    migrate.upgrade(url, revision)
    click.echo(f"database at {migrate.current_revision(container(ctx).engine)}")


@db.command()
@click.argument("revision")
@click.pass_context
def downgrade(ctx: click.Context, revision: str) -> None:
    """Revert migrations down to REVISION (`base` empties the schema)."""
    migrate.downgrade(container(ctx).settings.database_url, revision)
    click.echo(f"database at {migrate.current_revision(container(ctx).engine) or 'base'}")


@db.command()
@click.pass_context
def current(ctx: click.Context) -> None:
    """Print the schema revision of the database and the newest one known."""
    c = container(ctx)
    click.echo(
        f"current: {migrate.current_revision(c.engine) or 'base'}  "
        f"head: {migrate.head_revision(c.settings.database_url)}"
    )
