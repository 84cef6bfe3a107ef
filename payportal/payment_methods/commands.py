"""payportal-admin commands of the payment_methods slice: key rotation, recording lapsed cards."""

from __future__ import annotations

from payportal.payment_methods.rotation import DEFAULT_BATCH_SIZE, rotate_encryption_key
from payportal.payment_methods.services import record_lapsed_methods


def _batch_size(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 10_000:
        raise ValueError("batch size must be 1 to 10000")
    return value


def rotate_encryption_key_command(env, args) -> int:
    reports = rotate_encryption_key(env.session_factory, env.keyring, batch_size=args.batch_size)
    for report in reports:
        print(
            f"{report.label}: {report.rotated} re-sealed, {report.current} already under "
            f"{env.keyring.primary_id!r}, {len(report.failed)} failed"
        )
        for row_id in report.failed:
            print(f"  cannot open row {row_id}: its key is not in ENCRYPTION_KEY or it was altered")
    return 1 if any(report.failed for report in reports) else 0


def expire_payment_methods_command(env, args) -> int:
    total = 0
    while True:
        with env.session_factory() as session, session.begin():
            count = record_lapsed_methods(session, batch_size=args.batch_size)
        total += count
        if count < args.batch_size:
            break
    print(f"payment_methods: {total} lapsed card(s) recorded as expired")
    return 0


def register(subparsers) -> None:
    rotate = subparsers.add_parser(
        "rotate-encryption-key",
        help="re-seal every stored secret under the first key of ENCRYPTION_KEY",
        description="Put the new key first (ENCRYPTION_KEY=new:...,old:...), run this, then "
        "drop the old key once it reports 0 failed. Safe to re-run; it works in batches.",
    )
    rotate.add_argument("--batch-size", type=_batch_size, default=DEFAULT_BATCH_SIZE)
    rotate.set_defaults(func=rotate_encryption_key_command)
    expire = subparsers.add_parser(
        "expire-payment-methods",
        help="store `expired` on cards whose expiry month has ended (the API shows it already)",
    )
    expire.add_argument("--batch-size", type=_batch_size, default=DEFAULT_BATCH_SIZE)
    expire.set_defaults(func=expire_payment_methods_command)
