"""Correlation ids, one structured access-log line per request, and the JSON log formatter."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

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
    """One JSON object per line: time, level, logger, message and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


JsonFormatter.converter = time.gmtime


def _correlation_id(request) -> str:
    # Kept in the environ so a pyramid_retry attempt reuses the id of the first one.
    environ = request.environ
    if _ENVIRON_KEY not in environ:
        given = request.headers.get(CORRELATION_HEADER, "")
        environ[_ENVIRON_KEY] = given if _VALID_ID.match(given) else uuid.uuid4().hex
    return environ[_ENVIRON_KEY]


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
            log.info(
                "%s %s %s %.1fms",
                request.method,
                request.path_info,
                status,
                duration_ms,
                extra={
                    "method": request.method,
                    "path": request.path_info,
                    "status": status,
                    "duration_ms": round(duration_ms, 2),
                    "correlation_id": correlation_id,
                    "merchant_id": identity,
                    "route": request.matched_route.name if request.matched_route else None,
                },
            )
        response.headers[CORRELATION_HEADER] = correlation_id
        return response

    return correlation_tween


def includeme(config):
    config.add_request_method(_correlation_id, "correlation_id", reify=True)
    config.add_tween(
        "payportal.logging.correlation_tween_factory", over="pyramid_tm.tm_tween_factory"
    )
