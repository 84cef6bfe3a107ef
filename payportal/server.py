"""waitress with a graceful SIGTERM: stop accepting, finish what is in flight, flush, exit.

Used from the .ini as `[server:main] use = egg:payportal#waitress`; every other option is
waitress's own. `shutdown_grace` (seconds, default 25) bounds the wait for in-flight requests.
"""

from __future__ import annotations

import _thread
import logging
import signal
import threading
import time

import waitress
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer

log = logging.getLogger(__name__)


def _socket_map(server) -> dict:
    return server._map if isinstance(server, BaseWSGIServer) else server.map


def _listeners(server) -> list[BaseWSGIServer]:
    if isinstance(server, BaseWSGIServer):
        return [server]
    return [d for d in server.map.values() if isinstance(d, BaseWSGIServer)]


def _in_flight(server) -> int:
    """Requests being read, queued, run or written back."""
    dispatcher = server.task_dispatcher
    busy = dispatcher.active_count + len(dispatcher.queue)
    for channel in list(_socket_map(server).values()):
        if isinstance(channel, HTTPChannel) and (channel.requests or channel.total_outbufs_len):
            busy += 1
    return busy


def run_shutdown_hooks(app) -> None:
    registry = getattr(app, "registry", None)
    for hook in getattr(registry, "shutdown_hooks", []):
        try:
            hook()
        except Exception:
            log.exception("shutdown hook %r failed", hook)


def install_graceful_shutdown(server, app, grace: float) -> threading.Event:
    """Returns an event set once the shutdown hooks have run."""
    stopping = threading.Event()
    hooks_done = threading.Event()

    def drain_then_exit():
        deadline = time.monotonic() + grace
        while _in_flight(server) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = _in_flight(server)
        if left:
            log.warning("shutdown: %d request(s) still in flight after %.0fs", left, grace)
        run_shutdown_hooks(app)
        hooks_done.set()
        _thread.interrupt_main()  # ends waitress's loop through its KeyboardInterrupt path

    def stop_listening(listener):
        # runs inside waitress's loop (through its trigger): closing a socket from the signal
        # handler would leave select() polling a dead descriptor
        listener.accepting = False
        listener.del_channel()
        listener.socket.close()

    def on_sigterm(signum, frame):
        if stopping.is_set():
            return
        stopping.set()
        log.info("SIGTERM: no new connections; finishing requests in flight")
        for listener in _listeners(server):
            listener.trigger.pull_trigger(lambda listener=listener: stop_listening(listener))
        threading.Thread(target=drain_then_exit, name="payportal-drain", daemon=True).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    # a process started in the background inherits SIGINT ignored, and interrupt_main() then
    # does nothing: make SIGINT raise KeyboardInterrupt whatever the parent did
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return hooks_done


def serve(app, global_conf, **options):
    """PasteDeploy server runner: waitress.serve plus the graceful SIGTERM above."""
    grace = float(options.pop("shutdown_grace", 25))
    server = waitress.create_server(app, **options)
    hooks_done = install_graceful_shutdown(server, app, grace)
    server.print_listen("Serving on http://{}:{}")
    try:
        server.run()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.task_dispatcher.shutdown(cancel_pending=False, timeout=grace)
        if not hooks_done.is_set():  # Ctrl-C rather than SIGTERM
            run_shutdown_hooks(app)
