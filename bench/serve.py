"""Serve payportal (from production.ini) or the floor app under production.ini's server model.

    python bench/serve.py payportal PORT      the [app:main] of production.ini
    python bench/serve.py floor PORT          ../shared/bench/floor_app.py (DATABASE_URL)

Both run with the [server:main] options of production.ini (payportal's waitress runner, its
worker processes and threads, connection limit, backlog, ...) except that they listen on
127.0.0.1 only, and with production.ini's logging (one JSON line per request on stderr), so the
figures include it. BENCH_SERVER_WORKERS and BENCH_SERVER_THREADS override the worker process and
thread counts (to compare models).
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_INI = ROOT / "production.ini"
FLOOR_APP = ROOT.parent / "shared" / "bench" / "floor_app.py"
# waitress options whose ini values are PasteDeploy's, not waitress's
NOT_WAITRESS = {"use", "get port", "port", "host", "http_port", "here", "__file__"}


def server_options(threads: int | None, workers: int | None = None) -> dict[str, str]:
    """production.ini's [server:main], for 127.0.0.1 (and other thread or worker counts when
    asked)."""
    parser = configparser.RawConfigParser()
    parser.read(PRODUCTION_INI)
    section = dict(parser.items("server:main"))
    defaults = dict(parser.items("DEFAULT"))
    options = {k: v for k, v in section.items() if k not in NOT_WAITRESS and k not in defaults}
    if threads is not None:
        options["threads"] = str(threads)
    if workers is not None:
        options["workers"] = str(workers)
    return options


def load_payportal():
    from pyramid.paster import get_app, setup_logging

    setup_logging(str(PRODUCTION_INI))
    return get_app(str(PRODUCTION_INI), "main")


def load_floor():
    spec = importlib.util.spec_from_file_location("floor_app", FLOOR_APP)
    module = importlib.util.module_from_spec(spec)
    # Pyramid's Configurator finds its caller's package through sys.modules
    sys.modules["floor_app"] = module
    spec.loader.exec_module(module)
    application = module.application
    # forked workers (production.ini's `workers`) must not share the parent's pooled connections
    application.registry.after_fork_hooks = [lambda: application.engine.dispose(close=False)]
    return application


def main(argv: list[str]) -> int:
    which, port = argv[0], int(argv[1])
    threads, workers = (
        int(os.environ[name]) if os.environ.get(name) else None
        for name in ("BENCH_SERVER_THREADS", "BENCH_SERVER_WORKERS")
    )
    app = load_payportal() if which == "payportal" else load_floor()
    from payportal.server import serve

    # the graceful runner (with `workers` > 1 the supervisor of that many worker processes):
    # SIGTERM finishes requests in flight and runs the shutdown hooks
    serve(app, {}, host="127.0.0.1", port=str(port), **server_options(threads, workers))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
