"""waitress with a graceful SIGTERM, in one process or in several worker processes.

Used from the .ini as `[server:main] use = egg:payportal#waitress`; every other option is
waitress's own, except:

- `shutdown_grace` (seconds, default 25) bounds the wait for in-flight requests;
- `workers` (default 1). With 1, waitress runs in this process, as it always did. With N > 1
  this process binds the listening socket(s) once, forks N workers that each run waitress's loop
  (with `threads` threads) on the inherited sockets, a new connection going to a worker with
  the fewest open connections (AcceptBalance), and supervises them: SIGTERM or SIGINT is
  passed on to every worker, which stops accepting, finishes what is in flight (up to
  `shutdown_grace`), runs the shutdown hooks and exits; a worker that dies unexpectedly is
  started again after a backoff (0.5 s, doubling while workers keep dying young, up to 30 s);
  the supervisor exits once every worker has.

The application is loaded once, before the fork (pserve loads it before calling this runner), so
each worker starts by running `app.registry.after_fork_hooks` (payportal.db drops the pooled
connections it inherited there). Prometheus counters are switched to prometheus-client's
multiprocess mode before the first fork (payportal.metrics.prepare_for_workers), in a temporary
PROMETHEUS_MULTIPROC_DIR unless one is set, so /metrics from any worker counts all of them.
What start-up created is frozen out of the garbage collector's passes (freeze_startup_objects)
before serving or forking.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import mmap
import os
import select
import shutil
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass

import waitress
from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer
from waitress.utilities import cleanup_unix_socket

log = logging.getLogger(__name__)

# restart backoff of a worker that died unexpectedly: doubles while workers die within
# STABLE_AFTER seconds of their start, and starts again from the minimum after a stable one
RESTART_BACKOFF_MIN = 0.5
RESTART_BACKOFF_MAX = 30.0
STABLE_AFTER = 10.0
# after a stop, workers still alive this long past shutdown_grace are killed
KILL_AFTER_GRACE = 5.0
# options that say where to listen: the supervisor binds them, the workers get the sockets
_LISTEN_OPTIONS = ("host", "port", "listen", "unix_socket", "unix_socket_perms", "sockets")


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


def run_after_fork_hooks(app) -> None:
    """In a freshly forked worker: drop what must not be shared with the parent (pools)."""
    registry = getattr(app, "registry", None)
    for hook in getattr(registry, "after_fork_hooks", []):
        hook()


def install_graceful_shutdown(
    server, app, grace: float, *, sigint_drains: bool = False, on_stop=None
) -> threading.Event:
    """Returns an event set once the shutdown hooks have run. With `sigint_drains` (the workers
    of a supervisor) SIGINT drains like SIGTERM: a terminal's Ctrl-C reaches the whole process
    group, the supervisor passes it on too, and neither may cut requests short. `on_stop` is
    called (in the signal handler) when the stop begins."""
    stopping = threading.Event()
    hooks_done = threading.Event()
    socket_map = _socket_map(server)
    trigger = _listeners(server)[0].trigger  # the listeners share the map: any trigger wakes it

    def drain_then_exit():
        deadline = time.monotonic() + grace
        while _in_flight(server) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = _in_flight(server)
        if left:
            log.warning("shutdown: %d request(s) still in flight after %.0fs", left, grace)
        run_shutdown_hooks(app)
        hooks_done.set()
        # End waitress's loop from inside it: close what it still holds (idle connections, the
        # triggers), so its `while map:` finds nothing left and returns. Not interrupt_main():
        # its KeyboardInterrupt could land inside a trigger thunk (stop_listening still running
        # when nothing was in flight), where waitress swallows exceptions, and the process then
        # served on and ignored every later SIGTERM.
        trigger.pull_trigger(lambda: wasyncore.close_all(socket_map, ignore_all=True))

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
        if on_stop is not None:
            on_stop()
        name = signal.Signals(signum).name
        log.info("%s: no new connections; finishing requests in flight", name)
        for listener in _listeners(server):
            listener.trigger.pull_trigger(lambda listener=listener: stop_listening(listener))
        threading.Thread(target=drain_then_exit, name="payportal-drain", daemon=True).start()

    def on_sigint(signum, frame):
        if hooks_done.is_set():  # Ctrl-C again once the drain is over: stop at once
            raise KeyboardInterrupt
        on_sigterm(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
    if sigint_drains:
        signal.signal(signal.SIGINT, on_sigint)
    else:
        # SIGINT (Ctrl-C) stops a single process at once, even one whose parent started it
        # with SIGINT ignored (a shell's `&`)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return hooks_done


def _run_server(server, app, grace: float, hooks_done: threading.Event, before_loop=None):
    try:
        if before_loop is not None:
            before_loop()
        server.run()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.task_dispatcher.shutdown(cancel_pending=False, timeout=grace)
        if not hooks_done.is_set():  # Ctrl-C rather than SIGTERM
            run_shutdown_hooks(app)


def serve(app, global_conf, **options):
    """PasteDeploy server runner: waitress.serve plus the graceful SIGTERM above, in `workers`
    processes."""
    grace = float(options.pop("shutdown_grace", 25))
    workers = int(options.pop("workers", 1))
    freeze_startup_objects()
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if workers > 1:
        if not hasattr(os, "fork"):
            raise ValueError("workers > 1 needs fork(); use workers = 1 on this platform")
        Supervisor(app, options, grace, workers).run()
        return
    server = waitress.create_server(app, **options)
    hooks_done = install_graceful_shutdown(server, app, grace)
    server.print_listen("Serving on http://{}:{}")
    _run_server(server, app, grace, hooks_done)


def freeze_startup_objects() -> None:
    """Leave what start-up created (the application, its registry, compiled statements and
    templates, the imported modules: ~150,000 objects) out of the garbage collector's passes.

    They live as long as the process, yet every full collection walked them all: 140 ms with the
    interpreter lock held, a stall of every request in the process at once, every few thousand
    requests; 14 ms once they are frozen. Before a fork it also keeps the collector from writing
    to the parent's pages, which the workers then keep sharing (the documented gc.freeze use).
    """
    gc.collect()
    gc.freeze()


def bind_sockets(options: dict) -> tuple[list[socket.socket], dict]:
    """The listening sockets waitress would bind for these options, bound and listening here,
    and the options a worker passes to waitress with them (`sockets=` instead of where)."""
    adj = Adjustments(**options)
    rest = {k: v for k, v in options.items() if k not in _LISTEN_OPTIONS}
    if adj.sockets:
        return list(adj.sockets), rest
    sockets = []
    try:
        if adj.unix_socket and hasattr(socket, "AF_UNIX"):
            cleanup_unix_socket(adj.unix_socket)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind(adj.unix_socket)
            os.chmod(adj.unix_socket, adj.unix_socket_perms)
            sock.listen(adj.backlog)
        else:
            for family, socktype, proto, sockaddr in adj.listen:
                sock = socket.socket(family, socktype, proto)
                sockets.append(sock)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(sockaddr)
                sock.listen(adj.backlog)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets, rest


def _address(sock: socket.socket) -> str:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return f"unix:{sock.getsockname()}"
    host, port = socket.getnameinfo(
        sock.getsockname(), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
    )
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _die_with_parent(parent: int) -> None:
    """Linux: SIGTERM (a graceful stop) to this worker if the supervisor dies without passing
    a stop on, e.g. killed with SIGKILL; elsewhere orphans serve until stopped themselves."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl
        os.kill(os.getpid(), signal.SIGTERM)


class AcceptBalance:
    """Which worker accepts the next connection: one with the fewest open connections.

    The workers share one listening socket and the kernel wakes them all for a connection: the
    one on a core at that moment takes it, and on a busy machine that is often the same worker for
    a whole burst (16 keep-alive connections split 15-1 about as often as 8-8), leaving a core
    idle for as long as those connections live. So whenever waitress asks a worker's listener
    whether to accept (every turn of its loop, at least once a second), the worker writes its
    count of connections to memory shared with the others and steps aside while another one
    holds fewer; if that one is not listening (it stepped aside itself a moment ago), it is woken
    through its pipe, turns its loop and listens again. A worker that stops accepting (a drain, its
    connection_limit, an exit: its slot is cleared) wakes the ones waiting on it, and one that has
    not turned its loop for STALE seconds is not deferred to."""

    STALE = 3.0
    FIELDS = 3  # per slot: open connections, when it last turned its loop, listening (1/0)

    def __init__(self, slots: int):
        self.slots = slots
        self._shared = mmap.mmap(-1, 8 * self.FIELDS * slots)  # anonymous, shared across fork
        self._values = memoryview(self._shared).cast("d")
        self._pipes = [os.pipe() for _ in range(slots)]
        for read_end, write_end in self._pipes:
            os.set_blocking(read_end, False)
            os.set_blocking(write_end, False)

    def clear(self, slot: int) -> None:
        """Worker `slot` accepts nothing now: nobody waits on it, those who did are woken."""
        base = self.FIELDS * slot
        if self._values[base + 1]:
            self._values[base + 1] = self._values[base + 2] = 0.0
            self._wake_waiting(slot)

    def _wake(self, slot: int) -> None:
        with contextlib.suppress(OSError):  # a full pipe: it is being woken
            os.write(self._pipes[slot][1], b"\0")

    def _wake_waiting(self, cleared: int) -> None:
        now = time.monotonic()
        for other in range(self.slots):
            at = self.FIELDS * other
            fresh = now - self._values[at + 1] < self.STALE
            if other != cleared and fresh and not self._values[at + 2]:
                self._wake(other)

    def accept(self, slot: int, connections: int) -> bool:
        now = time.monotonic()
        values = self._values
        base = self.FIELDS * slot
        values[base] = connections
        values[base + 1] = now
        listen = True
        for other in range(self.slots):
            at = self.FIELDS * other
            if other == slot or now - values[at + 1] >= self.STALE:
                continue
            if values[at] < connections:
                listen = False
                if not values[at + 2]:
                    self._wake(other)
        values[base + 2] = 1.0 if listen else 0.0
        return listen

    def install(self, server, slot: int) -> None:
        """In worker `slot`: wrap its listeners' readable() (waitress's answer: not stopping,
        under connection_limit; then the balance's) and let its pipe wake its loop."""
        socket_map = _socket_map(server)
        for listener in _listeners(server):

            def readable(waitress_readable=listener.readable):
                if not waitress_readable():
                    self.clear(slot)
                    return False
                # the map also holds the listener(s), the trigger and the pipe: alike everywhere
                return self.accept(slot, len(socket_map))

            listener.readable = readable
        _Wakeup(self._pipes[slot][0], socket_map)


class _Wakeup(wasyncore.file_dispatcher):
    """A worker's end of its AcceptBalance pipe: reading it is all it takes (the loop turns)."""

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def handle_read(self) -> None:
        with contextlib.suppress(OSError):
            self.recv(512)


@dataclass
class Worker:
    slot: int
    started: float


class Supervisor:
    """Binds once, forks `count` workers, passes stop signals on, restarts the ones that die."""

    STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
    SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}

    def __init__(self, app, options: dict, grace: float, count: int):
        self.app = app
        self.options = dict(options)
        self.grace = grace
        self.count = count
        self.pid = os.getpid()
        self.workers: dict[int, Worker] = {}
        self.restart_at: dict[int, float] = {}  # slot -> when to start it again
        self.failures: dict[int, int] = {}  # slot -> workers that died young in a row
        self.stopping = False
        self.kill_at: float | None = None
        self.sockets: list[socket.socket] = []
        self.metrics_dir: str | None = None
        self.balance = AcceptBalance(count)
        self._wake_read = self._wake_write = -1

    # -- the supervisor ---------------------------------------------------------------------

    def run(self) -> None:
        self.sockets, self.worker_options = bind_sockets(self.options)
        previous = {signum: signal.getsignal(signum) for signum in self.SIGNALS}
        try:
            self._prepare_metrics()
            self._install_signals()
            listen = ", ".join(_address(sock) for sock in self.sockets)
            logging.getLogger("waitress").info("Serving on %s (%d workers)", listen, self.count)
            self._warn_about_threads()
            for slot in range(self.count):
                if not self.stopping:
                    self._spawn(slot)
            self._supervise()
        finally:
            self._close_sockets()
            signal.set_wakeup_fd(-1)
            for signum, handler in previous.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
            for fd in (self._wake_read, self._wake_write):
                if fd >= 0:
                    os.close(fd)
            if self.metrics_dir:
                shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def _prepare_metrics(self) -> None:
        # only when the application counts Prometheus metrics (not the bench's floor app)
        metrics = sys.modules.get("payportal.metrics")
        if metrics is not None:
            self.metrics_dir = metrics.prepare_for_workers()

    def _install_signals(self) -> None:
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        # every signal with a Python handler also writes a byte here: select() wakes for it
        signal.set_wakeup_fd(self._wake_write)
        for signum in self.STOP_SIGNALS:
            signal.signal(signum, self._on_stop_signal)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)

    def _warn_about_threads(self) -> None:
        others = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
        if others:
            log.warning(
                "forking workers while threads run (they are not in the workers): %s",
                ", ".join(others),
            )

    def _on_stop_signal(self, signum, frame) -> None:
        if os.getpid() != self.pid:  # a worker between fork and its own handlers: blocked
            return
        name = signal.Signals(signum).name
        if self.stopping:
            log.info("%s: already stopping; waiting for %d worker(s)", name, len(self.workers))
            return
        self.stopping = True
        self.kill_at = time.monotonic() + self.grace + KILL_AFTER_GRACE
        log.info("%s: stopping %d worker(s)", name, len(self.workers))
        # the workers close their copies; with ours open the kernel would still queue
        # connections nobody will ever accept
        self._close_sockets()
        for pid in list(self.workers):
            self._signal(pid, signum)

    def _close_sockets(self) -> None:
        for sock in self.sockets:
            sock.close()

    @staticmethod
    def _signal(pid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    def _supervise(self) -> None:
        while self.workers or (self.restart_at and not self.stopping):
            self._reap()
            now = time.monotonic()
            if self.stopping:
                self.restart_at.clear()
                if not self.workers:
                    break
                if self.kill_at is not None and now >= self.kill_at:
                    for pid, worker in list(self.workers.items()):
                        log.error(
                            "worker %d (pid %d) still running %.0fs after the stop: killed",
                            worker.slot,
                            pid,
                            self.grace + KILL_AFTER_GRACE,
                        )
                        self._signal(pid, signal.SIGKILL)
                    self.kill_at = None
            else:
                for slot, due in sorted(self.restart_at.items()):
                    if due <= now:
                        del self.restart_at[slot]
                        self._spawn(slot)
            self._sleep(self._next_wake(time.monotonic()))

    def _next_wake(self, now: float) -> float | None:
        moments = list(self.restart_at.values()) if not self.stopping else []
        if self.stopping and self.kill_at is not None:
            moments.append(self.kill_at)
        return max(0.0, min(moments) - now) if moments else None

    def _sleep(self, timeout: float | None) -> None:
        """Until a signal arrives (SIGCHLD included) or `timeout` seconds pass."""
        with contextlib.suppress(InterruptedError):
            select.select([self._wake_read], [], [], timeout)
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_read, 512):
                pass

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            self.balance.clear(worker.slot)
            how = self._describe(status)
            if self.stopping:
                level = logging.INFO if os.waitstatus_to_exitcode(status) == 0 else logging.WARNING
                log.log(level, "worker %d (pid %d) %s", worker.slot, pid, how)
                continue
            lived = time.monotonic() - worker.started
            failures = 0 if lived >= STABLE_AFTER else self.failures.get(worker.slot, 0) + 1
            self.failures[worker.slot] = failures
            delay = min(RESTART_BACKOFF_MAX, RESTART_BACKOFF_MIN * 2 ** max(0, failures - 1))
            log.warning(
                "worker %d (pid %d) %s after %.1fs; starting another in %.1fs",
                worker.slot,
                pid,
                how,
                lived,
                delay,
            )
            self.restart_at[worker.slot] = time.monotonic() + delay

    @staticmethod
    def _describe(status: int) -> str:
        code = os.waitstatus_to_exitcode(status)
        if code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with {code}"

    def _spawn(self, slot: int) -> None:
        # stop signals wait until the worker has its own handlers (or the parent its record)
        signal.pthread_sigmask(signal.SIG_BLOCK, self.SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                self._worker_main(slot)  # never returns
            self.workers[pid] = Worker(slot, time.monotonic())
            log.info("worker %d started (pid %d)", slot, pid)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, self.SIGNALS)

    # -- a worker -----------------------------------------------------------------------------

    def _worker_main(self, slot: int) -> None:
        code = 1
        try:
            code = self._work(slot)
        except BaseException:
            log.exception("worker %d failed", slot)
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):  # a closed pipe: nothing more to say
                    stream.flush()
            os._exit(code)

    def _work(self, slot: int) -> int:
        signal.set_wakeup_fd(-1)
        os.close(self._wake_read)
        os.close(self._wake_write)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _die_with_parent(self.pid)
        run_after_fork_hooks(self.app)
        server = waitress.create_server(self.app, sockets=self.sockets, **self.worker_options)
        self.balance.install(server, slot)
        hooks_done = install_graceful_shutdown(
            server,
            self.app,
            self.grace,
            sigint_drains=True,
            on_stop=lambda: self.balance.clear(slot),
        )

        def unblock():
            # a stop that arrived since the fork is delivered now, to the handlers above
            signal.pthread_sigmask(signal.SIG_UNBLOCK, self.SIGNALS)

        _run_server(server, self.app, self.grace, hooks_done, before_loop=unblock)
        return 0
