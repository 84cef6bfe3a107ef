"""The polling loop the relay and the webhook worker share, and their SIGTERM handling."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM/SIGINT only raise the flag: the batch in hand finishes, then the loop ends."""

    def request_stop(_signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)


def run_loop(
    step: Callable[[], bool], *, stop: threading.Event, poll_seconds: float, once: bool = False
) -> None:
    """Call `step` until stopped; it returns True when it had a full batch (more may wait).

    With `once`, return as soon as a step finds less than a full batch. A failing step (the
    database restarting) is logged and tried again after a pause; with `once` it propagates.
    """
    while not stop.is_set():
        try:
            busy = step()
        except Exception:
            if once:
                raise
            log.exception("step failed; trying again in %.0f s", poll_seconds)
            stop.wait(poll_seconds)
            continue
        if busy:
            continue
        if once:
            return
        stop.wait(poll_seconds)
