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


def test_times_are_utc_with_milliseconds_on_both_sides_of_a_second():
    formatter = JsonFormatter()
    times = []
    for created in (1767225599.75, 1767225599.875, 1767225600.0, 1767225600.5):
        record = logging.LogRecord("payportal.tests", logging.INFO, __file__, 1, "m", (), None)
        record.created = created
        times.append(json.loads(formatter.format(record))["time"])
    assert times == [
        "2025-12-31T23:59:59.750Z",
        "2025-12-31T23:59:59.875Z",
        "2026-01-01T00:00:00.000Z",
        "2026-01-01T00:00:00.500Z",
    ]


def test_a_field_json_cannot_encode_is_written_as_its_text():
    class Amount:
        def __str__(self):
            return "1050 USD"

    record = logging.LogRecord("payportal.tests", logging.INFO, __file__, 1, "m", (), None)
    record.amount = Amount()
    assert json.loads(JsonFormatter().format(record))["amount"] == "1050 USD"
