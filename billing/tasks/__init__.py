"""Celery tasks: each a few lines that decode ids, call one service and log the result."""
