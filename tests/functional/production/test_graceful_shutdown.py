"""SIGTERM on a running waitress process: requests in flight finish, new ones are refused."""

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.processes import free_port, http_get, write_ini

ROOT = Path(__file__).resolve().parents[3]
SLOW_VIEWS = "tests.functional.production.slow_views"


def get(port: int, path: str, timeout: float = 10) -> tuple[int, bytes]:
    return http_get(port, path, timeout)


def wait_until_serving(port: int, process, deadline: float = 30) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise AssertionError(f"server exited early: {process.stdout.read()}")
        try:
            if get(port, "/healthz", timeout=1)[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not start")


def test_sigterm_finishes_in_flight_requests_and_refuses_new_ones(tmp_path, database_url):
    port = free_port()
    ini = tmp_path / "server.ini"
    write_ini(ini, database_url, port, **{"pyramid.includes": SLOW_VIEWS})
    pserve = Path(sys.executable).with_name("pserve")
    # started the way a shell's `&` starts it: SIGINT ignored (the shutdown must not need it)
    process = subprocess.Popen(
        [str(pserve), str(ini)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT)},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        wait_until_serving(port, process)
        results: list[tuple[int, bytes]] = []
        # an idle keep-alive connection must not hold the shutdown up
        idle = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        idle.request("GET", "/healthz")
        idle.getresponse().read()

        def slow_call():
            results.append(get(port, "/slow?seconds=1.5"))

        callers = [threading.Thread(target=slow_call) for _ in range(4)]
        for caller in callers:
            caller.start()
        time.sleep(0.5)  # all four are being served
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        try:
            refused = get(port, "/healthz", timeout=2)
        except OSError:
            refused = None
        for caller in callers:
            caller.join(timeout=15)
        assert results == [(200, b"finished")] * 4
        assert refused is None, "a new connection was served after SIGTERM"
        code = process.wait(timeout=15)
        idle.close()
        assert code == 0, process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


# A waitress server with payportal's graceful SIGTERM whose listener takes half a second to close
# inside waitress's loop, and whose shutdown hooks take 0.2 s: with nothing in flight, the drain
# is over while the listener is still closing. The stop must still end the loop (the interrupt
# sent then landed inside the closing thunk, where waitress swallows exceptions: the process
# went on serving, and ignored every later SIGTERM).
SLOW_CLOSE_SERVER = """
import time, types
import waitress
from payportal import server

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]

app.registry = types.SimpleNamespace(shutdown_hooks=[lambda: time.sleep(0.2)])
wsgi = waitress.create_server(app, host="127.0.0.1", port=0, threads=2)
close_now = wsgi.del_channel
def close_slowly(*args):
    time.sleep(0.5)
    close_now(*args)
wsgi.del_channel = close_slowly
hooks_done = server.install_graceful_shutdown(wsgi, app, 5)
print(wsgi.effective_port, flush=True)
server._run_server(wsgi, app, 5, hooks_done)
print("stopped", flush=True)
"""


def test_sigterm_ends_the_loop_even_when_the_drain_beats_the_listener_closing():
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_CLOSE_SERVER],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT)},
    )
    try:
        port = int(process.stdout.readline())
        assert get(port, "/")[0] == 200
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert "stopped" in output
