"""What cannot run here (systemd, docker, a production nginx) is still kept valid."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from skyvault.serving import gunicorn_argv, gunicorn_sizing

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_nginx_site_passes_nginx_t(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    config = tmp_path / "nginx.conf"
    config.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events {}\n"
        f"http {{\n access_log off;\n client_body_temp_path {tmp_path};\n"
        f" include {DEPLOY / 'nginx' / 'skyvault.conf'};\n}}\n"
    )
    result = subprocess.run([nginx, "-t", "-c", str(config), "-p", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


def test_compose_file_loads_and_names_every_service() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert set(compose["services"]) == {"db", "migrate", "web", "worker", "nginx"}
    for service in compose["services"].values():
        dockerfile = service.get("build", {}).get("dockerfile")
        if dockerfile:
            assert (DEPLOY.parent / dockerfile).exists()


@pytest.mark.parametrize("unit", sorted((DEPLOY / "systemd").glob("*.service")),
                         ids=lambda p: p.name)
def test_systemd_units_are_complete(unit: Path) -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read(unit)
    assert {"Unit", "Service", "Install"} <= set(parser.sections())
    exec_start = parser["Service"]["ExecStart"].split()
    assert exec_start[0].endswith("/skyvault")
    assert parser["Service"]["User"] == "skyvault"


def test_gunicorn_is_sized_to_the_machine() -> None:
    workers, threads = gunicorn_sizing(2)
    assert workers == 3 and threads >= 1
    argv = gunicorn_argv("127.0.0.1", 8000, workers, threads)
    assert argv[argv.index("--workers") + 1] == "3"
    assert argv[-1] == "skyvault.server.wsgi:app"
