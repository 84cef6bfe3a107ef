"""JSON log lines: one object per line, tracebacks inside it, and the switch PAYPORTAL_LOG_FORMAT
flips at start-up."""

from __future__ import annotations

import io
import json
import logging
import os
import sys

from payportal.logging import JsonFormatter, use_json_format


def error_record() -> logging.LogRecord:
    try:
        raise ValueError("settlement failed\nsecond line")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "payportal.errors", logging.ERROR, __file__, 1, "failed %s", ("pay_1",), exc_info
    )
    record.correlation_id = "c-1"
    return record


def test_a_traceback_stays_inside_one_json_line():
    line = JsonFormatter().format(error_record())
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "failed pay_1"
    assert entry["level"] == "error"
    assert entry["correlation_id"] == "c-1"
    assert "ValueError: settlement failed" in entry["exc_info"]
    assert entry["time"].endswith("Z")


def test_use_json_format_switches_the_handlers_of_a_logger():
    stream = io.StringIO()
    logger = logging.getLogger("payportal.tests.json_switch")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    try:
        use_json_format(logger)
        logger.warning("queue depth %d", 12, extra={"queue": "payments"})
    finally:
        logger.removeHandler(handler)
    entry = json.loads(stream.getvalue())
    assert entry == {
        "time": entry["time"],
        "level": "warning",
        "logger": "payportal.tests.json_switch",
        "message": "queue depth 12",
        "pid": os.getpid(),
        "queue": "payments",
    }
