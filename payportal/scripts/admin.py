"""payportal-admin <ini> <command> ...: operator tasks from the command line.

Each slice contributes its commands from its own `commands.py` (a `register(subparsers)`
function adding sub-commands whose `func(env, args)` does the work and returns an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from payportal.scripts import load_command_env

COMMAND_MODULES = (
    "payportal.merchants.commands",
    "payportal.payment_methods.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="payportal-admin",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("ini", help="the .ini file, e.g. development.ini")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env = load_command_env(args.ini)
    return int(args.func(env, args) or 0)


if __name__ == "__main__":
    sys.exit(main())
