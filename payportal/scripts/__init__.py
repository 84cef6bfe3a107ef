"""Console entry points, and what they share: loading settings and a database session."""

from __future__ import annotations

import logging.config
import os
from dataclasses import dataclass

from sqlalchemy.orm import sessionmaker


@dataclass
class CommandEnv:
    """What a console command works with: the validated settings and a session factory."""

    settings: object
    session_factory: sessionmaker
    keyring: object


def load_command_env(ini: str, *, configure_logging: bool = True) -> CommandEnv:
    from pyramid.paster import get_appsettings, setup_logging

    from payportal.crypto import keyring_from_settings
    from payportal.db import engine_from_settings, load_all_models
    from payportal.logging import use_json_format
    from payportal.settings import load_settings

    if configure_logging:
        setup_logging(ini)
    else:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
    load_all_models()
    # the parked-webhook listener: payments moved by a command still release what waits on them
    from payportal.gateways.services import apply_parked_webhooks
    from payportal.payments.state import on_transition

    on_transition(apply_parked_webhooks)
    settings = load_settings(get_appsettings(ini, name="main"), os.environ)
    if configure_logging and settings.log_format == "json":
        # PAYPORTAL_LOG_FORMAT=json: relay, worker and commands log as the web process does
        use_json_format()
    engine = engine_from_settings(settings)
    return CommandEnv(
        settings=settings,
        session_factory=sessionmaker(bind=engine, expire_on_commit=False),
        keyring=keyring_from_settings(settings),
    )
