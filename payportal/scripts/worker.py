"""payportal-worker <ini> [--once]: delivers events to merchants' webhook endpoints.

It reads events from the database (FOR UPDATE SKIP LOCKED), so it works with or without SQS,
and any number can run at once. SIGTERM lets the batch in hand finish, then it exits 0.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from payportal.events.delivery import WebhookWorker
from payportal.events.runner import run_loop, stop_on_signals
from payportal.scripts import load_command_env

log = logging.getLogger("payportal.worker")
POLL_SECONDS = 1.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payportal-worker", description=__doc__)
    parser.add_argument("ini", help="the .ini file, e.g. development.ini")
    parser.add_argument("--once", action="store_true", help="deliver what is due now, then exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env = load_command_env(args.ini)
    worker = WebhookWorker(env.session_factory, env.settings, env.keyring)
    stop = threading.Event()
    stop_on_signals(stop)
    log.info("delivering webhooks (stop with SIGTERM)")
    run_loop(worker.step, stop=stop, poll_seconds=POLL_SECONDS, once=args.once)
    log.info("worker stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
