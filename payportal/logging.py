"""Correlation ids, one structured access-log line per request, and the JSON log formatter."""

from __future__ import annotations

import io
import logging
import re
import time
import uuid

import pydantic_core
from pyramid_retry import is_error_retryable

log = logging.getLogger("payportal.access")

CORRELATION_HEADER = "X-Correlation-ID"
_ENVIRON_KEY = "payportal.correlation_id"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

# LogRecord attributes that are not ours to print as structured fields
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, pid and any `extra` fields.

    Every request writes one access line through it, so it is built for that: the time's
    seconds are formatted once a second, and pydantic-core's encoder writes the object (compact
    JSON, UTF-8; anything it cannot encode is written as its str(), as json.dumps's default=str
    did).
    """

    _second: tuple[int, str] = (-1, "")

    def _time(self, created: float) -> str:
        second = int(created)
        cached_second, text = self._second
        if cached_second != second:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, text)  # one assignment: threads see either pair whole
        return f"{text}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            # with several worker processes (payportal.server), which one wrote the line
            "pid": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return pydantic_core.to_json(entry, fallback=str).decode()


def _correlation_id(request) -> str:
    # Kept in the environ so a pyramid_retry attempt reuses the id of the first one.
    environ = request.environ
    if _ENVIRON_KEY not in environ:
        given = request.headers.get(CORRELATION_HEADER, "")
        environ[_ENVIRON_KEY] = given if _VALID_ID.match(given) else uuid.uuid4().hex
    return environ[_ENVIRON_KEY]


def _will_retry(request) -> bool:
    """This attempt failed with a serialization failure or deadlock pyramid_retry will re-run."""
    exception = getattr(request, "exception", None)
    return exception is not None and is_error_retryable(request, exception)


def _close_spooled_body(request) -> None:
    """Close the temporary file a large body was spooled into, once no retry will read it.

    pyramid_retry makes every body seekable so a retried attempt can read it again; bodies over
    webob's limit go to a temporary file that nothing else closes.
    """
    if _will_retry(request):
        return
    body = request.environ.get("wsgi.input")
    if request.environ.get("webob.is_body_seekable") and isinstance(body, io.BufferedRandom):
        body.close()


def _access_line(request, status, duration_ms, correlation_id, identity, retried) -> None:
    """The request's access line. Made with makeRecord and handed to the logger's handlers
    directly: logger.info would also walk the stack for the caller's file, line and function,
    which no access line prints (every one comes from here)."""
    path = request.path_info  # without its query string: tokens and e-mails never reach the log
    record = log.makeRecord(
        log.name,
        logging.INFO,
        __file__,
        0,
        "%s %s %s %.1fms correlation_id=%s merchant_id=%s%s",
        (
            request.method,
            path,
            status,
            duration_ms,
            correlation_id,
            identity or "-",
            " (attempt failed, retrying)" if retried else "",
        ),
        None,
        func="correlation_tween",
        extra={
            "method": request.method,
            "path": path,
            "status": status,
            "duration_ms": round(duration_ms, 2),
            "correlation_id": correlation_id,
            "merchant_id": identity,
            "route": request.matched_route.name if request.matched_route else None,
            "retried": retried,
        },
    )
    log.handle(record)


def correlation_tween_factory(handler, registry):
    def correlation_tween(request):
        start = time.perf_counter()
        correlation_id = request.correlation_id
        status = 500
        try:
            response = handler(request)
            status = response.status_int
        except Exception as exc:
            response = request.invoke_exception_view(exc_info=(type(exc), exc, exc.__traceback__))
            status = response.status_int
        finally:
            duration_ms = (time.perf_counter() - start) * 1000
            identity = getattr(request, "_payportal_identity_for_log", None)
            retried = _will_retry(request)
            if log.isEnabledFor(logging.INFO):
                _access_line(request, status, duration_ms, correlation_id, identity, retried)
            _close_spooled_body(request)
        response.headers[CORRELATION_HEADER] = correlation_id
        return response

    return correlation_tween


def use_json_format(logger: logging.Logger | None = None) -> None:
    """Switch the handlers of `logger` (the root logger by default) to one JSON object a line.

    PAYPORTAL_LOG_FORMAT=json does this at start-up, so a container can ask for JSON logs
    without its own copy of the .ini's logging sections.
    """
    formatter = JsonFormatter()
    for handler in (logger or logging.getLogger()).handlers:
        handler.setFormatter(formatter)


def includeme(config):
    if config.registry.payportal_settings.log_format == "json":
        use_json_format()
    config.add_request_method(_correlation_id, "correlation_id", reify=True)
    config.add_tween(
        "payportal.logging.correlation_tween_factory", over="pyramid_tm.tm_tween_factory"
    )
