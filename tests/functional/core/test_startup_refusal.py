"""A production start-up with a bad secret stops before serving, with one line naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from payportal.settings import SOURCES

ROOT = Path(__file__).resolve().parents[3]
PSERVE = Path(sys.executable).with_name("pserve")


def environment_without_settings(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {e for _i, e in SOURCES.values()}}
    # pyramid's own pkg_resources deprecation notice is not ours to show
    env["PYTHONWARNINGS"] = "ignore"
    env["PYTHONPATH"] = str(ROOT)  # this checkout's payportal, whatever the venv points at
    return {**env, **extra}


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        ({}, "payportal: setting DATABASE_URL (sqlalchemy.url): Field required"),
        (
            {"DATABASE_URL": "postgresql+psycopg://payportal@127.0.0.1:1/payportal"},
            "payportal: setting JWT_SECRET (payportal.jwt_secret): Field required",
        ),
    ],
)
def test_pserve_production_ini_refuses_to_start_and_names_the_setting(extra, line):
    result = subprocess.run(
        [str(PSERVE), "production.ini", "http_port=1"],
        cwd=ROOT,
        env=environment_without_settings(**extra),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == line
    assert "Serving on" not in result.stdout + result.stderr


def test_the_app_factory_refuses_development_secrets_in_production():
    from pyramid.paster import get_appsettings

    from payportal import main

    development = dict(get_appsettings(str(ROOT / "development.ini"), name="main"))
    with pytest.raises(SystemExit) as caught:
        main({}, **{**development, "payportal.environment": "production"})
    assert str(caught.value) == (
        "payportal: JWT_SECRET still has its development value; set a real secret"
    )
