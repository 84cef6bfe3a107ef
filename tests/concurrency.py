"""Concurrency helper for tests: real threads, separate connections, released together."""

import threading

import webtest


def race(wsgi_app, calls, timeout: float = 120):
    """Run each `call(testapp)` in its own thread, released together by a barrier; returns the
    responses in order (a thread that raises fails the test)."""
    barrier = threading.Barrier(len(calls))
    responses = [None] * len(calls)
    errors = []

    def run(index, call):
        app = webtest.TestApp(wsgi_app, extra_environ={"HTTP_HOST": "localhost"})
        try:
            barrier.wait(timeout=30)
            responses[index] = call(app)
        except Exception as exc:  # surfaced below: a thread must not fail silently
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not errors, errors
    return responses
