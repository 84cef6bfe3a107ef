"""payportal-relay <ini> [--once]: publishes unsent outbox events to SQS, sweeps expired payments,
folds the dashboard rollup.

Run as many as you like: they share the outbox through FOR UPDATE SKIP LOCKED. SIGTERM lets the
batch in hand finish, then the relay exits 0.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from payportal.events.relay import POLL_SECONDS, Relay
from payportal.events.runner import run_loop, stop_on_signals
from payportal.payments.sweep import run_sweep
from payportal.portal.rollup import fold_deltas
from payportal.scripts import load_command_env

log = logging.getLogger("payportal.relay")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payportal-relay", description=__doc__)
    parser.add_argument("ini", help="the .ini file, e.g. development.ini")
    parser.add_argument(
        "--once", action="store_true", help="send what is due, sweep once, then exit"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env = load_command_env(args.ini)
    relay = Relay(env.session_factory, env.settings, sweep=run_sweep, fold=fold_deltas)
    stop = threading.Event()
    stop_on_signals(stop)
    relay.announce()
    run_loop(relay.step, stop=stop, poll_seconds=POLL_SECONDS, once=args.once)
    log.info("relay stopped: %d events published, %d failed attempts", relay.sent, relay.failed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
