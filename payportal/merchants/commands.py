"""payportal-admin commands for operators: create operator accounts, list merchants, and
approve, suspend or deactivate a merchant (audit-logged, with a merchant.status_changed event).
"""

from __future__ import annotations

import getpass
import os
import sys

import sqlalchemy as sa

from payportal.errors import PayportalError
from payportal.merchants import services
from payportal.merchants.models import Merchant, MerchantStatus
from payportal.merchants.passwords import MAX_LENGTH, MIN_LENGTH

PASSWORD_ENV = "PAYPORTAL_OPERATOR_PASSWORD"  # noqa: S105 - a variable name, not a secret
LIST_LIMIT = 200

# command -> (target status, whether a reason is required, help)
STATUS_COMMANDS = {
    "approve-merchant": (MerchantStatus.ACTIVE, False, "let a merchant move money (active)"),
    "suspend-merchant": (MerchantStatus.SUSPENDED, True, "stop a merchant moving money for now"),
    "deactivate-merchant": (MerchantStatus.INACTIVE, True, "close a merchant's account"),
}


def cli_actor() -> str:
    """Who the audit log names: the command line, and the OS account that ran it."""
    try:
        user = getpass.getuser()
    except OSError:  # no login name in some containers
        user = "unknown"
    return f"operator-cli:{user}"


def _fail(message: str) -> int:
    print(f"payportal-admin: {message}", file=sys.stderr)
    return 1


def _operator_password() -> str | None:
    given = os.environ.get(PASSWORD_ENV)
    if given:
        return given
    password = getpass.getpass("Password for the new operator: ")
    if getpass.getpass("Repeat the password: ") != password:
        print("payportal-admin: the passwords differ", file=sys.stderr)
        return None
    return password


def create_operator_command(env, args) -> int:
    password = _operator_password()
    if password is None:
        return 1
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        return _fail(f"the password must be {MIN_LENGTH} to {MAX_LENGTH} characters long")
    try:
        with env.session_factory() as session, session.begin():
            operator = services.create_operator(
                session, env.settings, email=args.email, password=password, name=args.name
            )
            email = operator.email
    except PayportalError as exc:
        return _fail(exc.message)
    print(f"operator {email} created")
    return 0


def change_status_command(env, args) -> int:
    target = STATUS_COMMANDS[args.command][0]
    with env.session_factory() as session, session.begin():
        merchant = services.get_merchant_by_email(session, args.email)
        if merchant is None:
            return _fail(f"no merchant with email {args.email}")
        entry = services.change_merchant_status(
            session, merchant, target, actor=cli_actor(), reason=args.reason
        )
        if entry is None:
            print(f"merchant {merchant.email} is already {target}")
        else:
            print(f"merchant {merchant.email}: {entry.from_value} -> {entry.to_value}")
    return 0


def list_merchants_command(env, args) -> int:
    stmt = sa.select(Merchant).order_by(Merchant.created_at.desc()).limit(LIST_LIMIT)
    if args.status:
        stmt = stmt.where(Merchant.status == MerchantStatus(args.status))
    with env.session_factory() as session:
        for merchant in session.execute(stmt).scalars():
            created = merchant.created_at.strftime("%Y-%m-%d %H:%M")
            print(f"{merchant.status:<10} {created}  {merchant.email:<40} {merchant.name}")
    return 0


def register(subparsers) -> None:
    create = subparsers.add_parser(
        "create-operator",
        help="create a platform operator account",
        description=f"The password is read from {PASSWORD_ENV} when set, else prompted for.",
    )
    create.add_argument("email")
    create.add_argument("--name", help="how the console greets the operator")
    create.set_defaults(func=create_operator_command)

    for command, (_status, needs_reason, help_text) in STATUS_COMMANDS.items():
        parser = subparsers.add_parser(command, help=help_text)
        parser.add_argument("email")
        parser.add_argument(
            "--reason", required=needs_reason, help="recorded in the audit log (why)"
        )
        parser.set_defaults(func=change_status_command)

    listing = subparsers.add_parser("list-merchants", help="the newest merchants, by status")
    listing.add_argument("--status", choices=[s.value for s in MerchantStatus])
    listing.set_defaults(func=list_merchants_command)
