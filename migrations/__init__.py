"""Alembic migrations; installed as `billing._migrations` (setup.py), found by
`billing.store.migrate`."""
