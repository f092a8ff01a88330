"""docker/: a compose file that a real compose implementation accepts, and that would start.

`docker compose config` (or Debian's `docker-compose config`, installed by
scripts/install-compose from `make test`) validates and normalises the file; the test reads
the result: the migration gates every billing process, health checks are where the issue asks,
Flower needs a login and gets no billing secret, and Prometheus / Grafana ask only for metrics
billing exposes (scraped from the receiver here).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from billing.bootstrap import Container
from billing.webhooks.app import app_for

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
BILLING_SERVICES = ("worker", "beat", "webhooks")


def compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 check=False).returncode == 0:  # fmt: skip
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    pytest.skip("no compose implementation here (scripts/install-compose could not install one)")


def compose_config(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    copy = tmp_path / "docker"
    if not copy.exists():
        shutil.copytree(DOCKER, copy)
        shutil.copy(copy / "billing.env.example", copy / "billing.env")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWER_", "GRAFANA_"))}
    return subprocess.run(
        [*compose_command(), "-f", str(copy / "compose.yaml"), "config"],
        cwd=copy,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    done = compose_config(tmp_path, FLOWER_BASIC_AUTH="ops:flower-pass", GRAFANA_ADMIN_PASSWORD="g")
    assert done.returncode == 0, done.stderr
    loaded: dict[str, Any] = yaml.safe_load(done.stdout)
    return loaded


def test_worker_beat_and_receiver_wait_for_the_migration_and_healthy_services(
    config: dict[str, Any],
) -> None:
    services = config["services"]
    assert services["migrate"]["command"] == ["billing", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    for name in BILLING_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_postgres_redis_the_receiver_and_the_workers_have_health_checks(
    config: dict[str, Any],
) -> None:
    services = config["services"]

    def check(name: str) -> str:
        return " ".join(services[name]["healthcheck"]["test"])

    assert "pg_isready" in check("postgres")
    assert "redis-cli ping" in check("redis")
    assert "/healthz" in check("webhooks")
    assert "inspect ping" in check("worker")


def test_flower_needs_a_login_and_gets_none_of_billings_secrets(
    config: dict[str, Any], tmp_path: Path
) -> None:
    flower = config["services"]["flower"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"] == "ops:flower-pass"
    assert not [k for k in flower["environment"] if k.startswith("BILLING_JUSPAY")]
    assert "env_file" not in flower
    refused = compose_config(tmp_path, GRAFANA_ADMIN_PASSWORD="g")
    assert refused.returncode != 0
    assert "FLOWER_BASIC_AUTH" in refused.stderr


def test_the_image_is_a_regular_install_and_the_context_leaves_out_venv_and_git() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert installs
    assert all(" -e " not in line and "--editable" not in line for line in installs)
    assert "COPY migrations migrations" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv/" in ignored
    assert ".git/" in ignored


def test_prometheus_and_grafana_ask_only_for_metrics_billing_exposes(
    config: dict[str, Any],
    sqlite_url: str,
    make_container: Callable[..., Container],
) -> None:
    app = make_container(sqlite_url, webhook_username="u", webhook_password="p-secret")
    text = TestClient(app_for(app, lambda _pk: None)).get("/metrics").text
    exposed = {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in ("", "_total", "_bucket", "_count", "_sum")
    }
    dashboard = json.loads((DOCKER / "grafana" / "dashboards" / "billing.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    asked = {name for expr in exprs for name in re.findall(r"\bbilling_[a-z_]+", expr)}
    assert asked
    assert asked <= exposed, asked - exposed
    prometheus = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert jobs["billing-webhooks"]["static_configs"][0]["targets"] == ["webhooks:8080"]
    worker_port = config["services"]["worker"]["environment"]["BILLING_METRICS_PORT"]
    assert jobs["billing-workers"]["dns_sd_configs"][0]["port"] == int(worker_port)
