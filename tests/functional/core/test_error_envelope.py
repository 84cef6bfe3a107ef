"""Every failure under /api answers the one JSON envelope of the API contract; nothing half-done
is committed; a crash is logged with its correlation id and never shown to the client."""

from __future__ import annotations

import json
import logging

import pytest
import sqlalchemy as sa

from payportal.merchants.models import Operator
from tests.functional.core.probe_views import CRASH_MESSAGE

CHARGE = "/api/v1/probe-charges"
ONE_MIB = 1024 * 1024


def assert_envelope(response, status: int, type_: str, code: str) -> dict:
    assert response.status_int == status
    assert response.content_type == "application/json"
    error = response.json["error"]
    assert set(error) == {"type", "code", "message", "details", "correlation_id"}
    assert (error["type"], error["code"]) == (type_, code)
    assert error["message"]
    assert error["correlation_id"] == response.headers["X-Correlation-ID"]
    return error


def post_raw(app, body: bytes, content_type: str = "application/json", **kwargs):
    return app.post(CHARGE, body, headers={"Content-Type": content_type}, **kwargs)


def test_a_valid_body_reaches_the_view(probe_testapp):
    response = probe_testapp.post_json(CHARGE, {"amount": 1050, "currency": "USD"}, status=201)
    assert response.json == {"amount": 1050, "currency": "USD", "description": None}


@pytest.mark.parametrize(
    "path", ["/api/v1/no-such-thing", "/api/v1/probe-charges/1/2/3", "/api/v2/payments", "/api/"]
)
def test_unknown_paths_are_404_envelopes(probe_testapp, path):
    response = probe_testapp.get(path, status=404)
    assert_envelope(response, 404, "not_found", "not_found")


def test_extra_segments_after_an_endpoint_are_404_not_the_endpoint(probe_testapp):
    response = probe_testapp.post_json(
        CHARGE + "/extra", {"amount": 1050, "currency": "USD"}, status=404
    )
    assert_envelope(response, 404, "not_found", "not_found")


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_a_method_the_path_does_not_take_is_405(probe_testapp, method):
    response = probe_testapp.request(CHARGE, method=method, status=405)
    error = assert_envelope(response, 405, "invalid_request", "method_not_allowed")
    assert method in error["message"]
    assert response.headers["Allow"] == "POST"  # what the path does take (RFC 9110 §15.5.6)


@pytest.mark.parametrize(
    "body",
    [b'{"amount": 10', b"not json at all", b'{"amount": 10,}', b"\xff\xfe{}"],
    ids=["truncated", "text", "trailing-comma", "not-utf8"],
)
def test_malformed_json_is_400(probe_testapp, body):
    response = post_raw(probe_testapp, body, status=400)
    error = assert_envelope(response, 400, "invalid_request", "invalid_request")
    assert "JSON" in error["message"]


@pytest.mark.parametrize("body", [b"[1, 2]", b'"USD"', b"42", b"null", b"", b"   "])
def test_a_body_that_is_not_an_object_is_400(probe_testapp, body):
    response = post_raw(probe_testapp, body, status=400)
    error = assert_envelope(response, 400, "invalid_request", "invalid_request")
    assert "object" in error["message"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_a_body_that_is_not_application_json_is_415(probe_testapp, content_type):
    body = json.dumps({"amount": 1050, "currency": "USD"}).encode()
    response = post_raw(probe_testapp, body, content_type, status=415)
    assert_envelope(response, 415, "invalid_request", "unsupported_media_type")


def test_json_with_a_charset_parameter_is_accepted(probe_testapp):
    body = json.dumps({"amount": 1050, "currency": "EUR"}).encode()
    response = post_raw(probe_testapp, body, "application/json; charset=utf-8", status=201)
    assert response.json["currency"] == "EUR"


def test_a_body_over_one_mib_is_413(probe_testapp):
    padding = "x" * ONE_MIB
    body = json.dumps({"amount": 1, "currency": "USD", "description": padding}).encode()
    response = post_raw(probe_testapp, body, status=413)
    error = assert_envelope(response, 413, "invalid_request", "payload_too_large")
    assert str(ONE_MIB) in error["message"]


def test_a_body_of_exactly_one_mib_is_read_and_validated(probe_testapp):
    head = b'{"amount": 1, "currency": "USD", "note": "'
    tail = b'"}'
    body = head + b"x" * (ONE_MIB - len(head) - len(tail)) + tail
    assert len(body) == ONE_MIB
    response = post_raw(probe_testapp, body, status=422)
    assert response.json["error"]["details"] == [{"field": "note", "message": "unknown field"}]


def test_an_unknown_field_is_422_and_names_it(probe_testapp):
    response = probe_testapp.post_json(
        CHARGE, {"amount": 1050, "currency": "USD", "colour": "blue"}, status=422
    )
    error = assert_envelope(response, 422, "validation_error", "invalid_field")
    assert error["details"] == [{"field": "colour", "message": "unknown field"}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"currency": "USD"}, "amount"),
        ({"amount": "1050", "currency": "USD"}, "amount"),
        ({"amount": 10.5, "currency": "USD"}, "amount"),
        ({"amount": 0, "currency": "USD"}, "amount"),
        ({"amount": 1050, "currency": "usd"}, "currency"),
    ],
    ids=["missing", "string", "float", "zero", "lower-case"],
)
def test_a_bad_field_is_422_and_names_it(probe_testapp, body, field):
    response = probe_testapp.post_json(CHARGE, body, status=422)
    error = assert_envelope(response, 422, "validation_error", "invalid_field")
    assert [d["field"] for d in error["details"]] == [field]
    assert error["message"].startswith(f"{field}: ")


def test_a_domain_error_keeps_its_code_and_details(probe_testapp):
    response = probe_testapp.post_json(
        "/api/v1/probe-operators", {"email": "a@example.com", "outcome": "conflict"}, status=409
    )
    error = assert_envelope(response, 409, "conflict", "operator_clash")
    assert error["details"] == [{"field": "email", "message": "already taken"}]


def test_a_crash_is_a_500_without_its_details_and_is_logged_with_the_correlation_id(
    probe_testapp, caplog
):
    caplog.set_level(logging.ERROR, logger="payportal.errors")
    response = probe_testapp.get(
        "/api/v1/probe-crash", headers={"X-Correlation-ID": "crash-42"}, status=500
    )
    error = assert_envelope(response, 500, "server_error", "internal_error")
    assert error["correlation_id"] == "crash-42"
    for leak in (CRASH_MESSAGE, "4242424242424242", "Traceback", "RuntimeError", "probe_views"):
        assert leak not in response.text
    [record] = [r for r in caplog.records if r.name == "payportal.errors"]
    assert record.levelno == logging.ERROR
    assert "crash-42" in record.getMessage()
    assert record.correlation_id == "crash-42"
    assert record.exc_info[0] is RuntimeError
    assert "Traceback" in caplog.text
    assert CRASH_MESSAGE in caplog.text


def operator_emails(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(Operator.email)).scalars())


@pytest.mark.parametrize(("outcome", "status"), [("conflict", 409), ("crash", 500)])
def test_a_failed_request_commits_nothing_it_wrote(
    live_probe_testapp, committed_db, outcome, status
):
    live_probe_testapp.post_json(
        "/api/v1/probe-operators",
        {"email": f"{outcome}@example.com", "outcome": outcome},
        status=status,
    )
    assert operator_emails(committed_db) == set()


def test_a_successful_request_commits_what_it_wrote(live_probe_testapp, committed_db):
    live_probe_testapp.post_json(
        "/api/v1/probe-operators", {"email": "kept@example.com", "outcome": "commit"}, status=201
    )
    assert operator_emails(committed_db) == {"kept@example.com"}


def test_portal_paths_get_html_error_pages(probe_testapp):
    response = probe_testapp.get("/dashboard/no-such-page", status=404)
    assert response.content_type == "text/html"
    assert "<html" in response.text
    assert '"error"' not in response.text


def test_a_portal_crash_is_an_html_page_with_only_the_reference(probe_testapp, caplog):
    caplog.set_level(logging.ERROR, logger="payportal.errors")
    response = probe_testapp.get(
        "/dashboard/probe-crash", headers={"X-Correlation-ID": "page-crash-7"}, status=500
    )
    assert response.content_type == "text/html"
    assert "page-crash-7" in response.text
    for leak in (CRASH_MESSAGE, "Traceback", "RuntimeError"):
        assert leak not in response.text
    assert any(r.correlation_id == "page-crash-7" for r in caplog.records if r.exc_info)
