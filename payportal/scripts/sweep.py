"""payportal-sweep <ini> [--loop]: expires pending payments past expires_at, purges
idempotency keys older than 24 h, folds the dashboard rollup's deltas and, once an hour, what
retention lets go (payportal.retention: old events, expired sessions, tokens and login
failures). Once by default; with --loop every PAYPORTAL_SWEEP_INTERVAL seconds until
SIGTERM/SIGINT. Any number may run at once (FOR UPDATE SKIP LOCKED; one folds at a time).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from payportal.payments.sweep import run_sweep
from payportal.portal.rollup import fold_deltas
from payportal.scripts import load_command_env

log = logging.getLogger("payportal.sweep")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="payportal-sweep",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("ini", help="the .ini file, e.g. development.ini")
    parser.add_argument("--loop", action="store_true", help="keep sweeping until stopped")
    parser.add_argument(
        "--interval", type=int, help="seconds between rounds (default: the sweep_interval setting)"
    )
    parser.add_argument("--batch-size", type=int, default=500, help="payments per transaction")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch_size < 1 or (args.interval is not None and args.interval < 1):
        print("payportal-sweep: --batch-size and --interval must be at least 1", file=sys.stderr)
        return 2
    env = load_command_env(args.ini)
    interval = args.interval or env.settings.sweep_interval
    stop = threading.Event()
    if args.loop:
        # the round in hand finishes; the loop ends instead of starting another
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda _signum, _frame: stop.set())
    while True:
        try:
            result = run_sweep(env.session_factory, env.settings, args.batch_size)
            # the relay folds on its own, every rollup_fold_interval; here, once a round
            folded = fold_deltas(env.session_factory)
        except Exception:
            if not args.loop:
                raise
            log.exception("sweep failed; trying again in %d s", interval)
        else:
            if not args.loop:
                retained = "".join(
                    f", {count} {name.replace('_', ' ')}" for name, count in result.purged.items()
                )
                print(
                    f"expired {result.expired_payments} payments, "
                    f"purged {result.purged_keys} idempotency keys{retained}, "
                    f"folded {folded} rollup deltas",
                    flush=True,
                )
        if not args.loop or stop.wait(interval):
            return 0


if __name__ == "__main__":
    sys.exit(main())
