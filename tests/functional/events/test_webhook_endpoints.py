"""Webhook endpoints: create (secret shown once, stored sealed), read, change, delete, URL rules,
and tenancy."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
import webtest

from payportal.db import TEST_CONNECTION_KEY
from payportal.errors import ValidationFailed
from payportal.events.endpoints import create_endpoint, endpoint_secret
from payportal.events.models import WebhookEndpoint
from tests.factories import create_api_key, merchant_headers

API = "/api/v1/webhook-endpoints"
HOOK = "http://127.0.0.1:9/hooks"


@pytest.fixture
def merchant(dbsession, settings):
    return merchant_headers(dbsession, settings)


def _create(testapp, headers, **body):
    return testapp.post_json(API, {"url": HOOK, "events": ["*"], **body}, headers=headers)


def test_the_secret_is_shown_once_and_stored_sealed(testapp, dbsession, merchant, wsgi_app):
    _owner, headers = merchant
    created = _create(testapp, headers, description="orders").json
    secret = created.pop("secret")

    assert secret.startswith("whsec_") and len(secret) > 30
    assert created["url"] == HOOK
    assert created["events"] == ["*"]
    assert created["enabled"] is True
    assert created["description"] == "orders"
    shown = testapp.get(f"{API}/{created['id']}", headers=headers).json
    assert shown == created
    listed = testapp.get(API, headers=headers).json
    assert listed["data"] == [created]
    row = dbsession.get(WebhookEndpoint, uuid.UUID(created["id"]))
    assert secret not in row.sealed_secret
    assert endpoint_secret(wsgi_app.registry.keyring, row) == secret


def test_endpoints_can_be_changed_and_deleted(testapp, merchant):
    _owner, headers = merchant
    endpoint_id = _create(testapp, headers).json["id"]

    changed = testapp.patch_json(
        f"{API}/{endpoint_id}",
        {"url": "https://127.0.0.1:8443/new", "events": ["payment.completed"], "enabled": False},
        headers=headers,
    ).json
    assert changed["url"] == "https://127.0.0.1:8443/new"
    assert changed["events"] == ["payment.completed"]
    assert changed["enabled"] is False
    assert "secret" not in changed

    testapp.delete(f"{API}/{endpoint_id}", headers=headers, status=204)
    testapp.get(f"{API}/{endpoint_id}", headers=headers, status=404)
    assert testapp.get(API, headers=headers).json["data"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://127.0.0.1/x"}, "url"),
        ({"url": "https://user:pw@127.0.0.1/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"events": []}, "events"),
        ({"events": ["payment.teleported"]}, "events.0"),
        ({"events": ["*", "payment.completed"]}, "events"),
        ({"enabled": "yes"}, "enabled"),
        ({"secret": "whsec_mine"}, "secret"),
    ],
)
def test_bad_endpoints_are_refused_and_nothing_changes(testapp, dbsession, merchant, body, field):
    owner, headers = merchant
    error = testapp.post_json(
        API, {"url": HOOK, "events": ["*"], **body}, headers=headers, status=422
    ).json["error"]
    assert error["details"][0]["field"] == field
    count = sa.select(sa.func.count()).where(WebhookEndpoint.merchant_id == owner.id)
    assert dbsession.scalar(count) == 0


def test_a_bad_change_is_refused_and_the_endpoint_stays(testapp, merchant):
    _owner, headers = merchant
    created = _create(testapp, headers).json
    created.pop("secret")

    testapp.patch_json(f"{API}/{created['id']}", {"url": "gopher://x"}, headers=headers, status=422)
    testapp.patch_json(f"{API}/{created['id']}", {"events": []}, headers=headers, status=422)

    assert testapp.get(f"{API}/{created['id']}", headers=headers).json == created


@pytest.fixture
def strict_app(app_settings, connection):
    """The app as production runs it: merchant webhooks may not reach private addresses."""
    from payportal import main

    app = main({}, **{**app_settings, "payportal.webhook_allow_private": "false"})
    yield webtest.TestApp(
        app, extra_environ={TEST_CONNECTION_KEY: connection, "HTTP_HOST": "localhost"}
    )
    app.registry.dbengine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6543/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.7/internal",
        "http://0.0.0.0/",
    ],
)
def test_private_and_loopback_urls_are_refused_when_the_setting_is_off(strict_app, merchant, url):
    _owner, headers = merchant
    error = strict_app.post_json(
        API, {"url": url, "events": ["*"]}, headers=headers, status=422
    ).json["error"]
    assert error["code"] == "invalid_url"
    assert error["details"] == [
        {
            "field": "url",
            "message": "points to a private, loopback, link-local or otherwise non-public address",
        }
    ]


def test_a_change_to_a_loopback_url_is_refused_when_the_setting_is_off(strict_app, merchant):
    _owner, headers = merchant
    endpoint = strict_app.post_json(
        API, {"url": "https://93.184.216.34/hook", "events": ["*"]}, headers=headers, status=201
    ).json
    strict_app.patch_json(
        f"{API}/{endpoint['id']}", {"url": "http://127.0.0.1/x"}, headers=headers, status=422
    )


def test_the_service_refuses_loopback_when_the_setting_is_off(dbsession, settings, merchant):
    owner, _ = merchant
    strict = settings.model_copy(update={"webhook_allow_private": False})
    with pytest.raises(ValidationFailed) as refused:
        create_endpoint(
            dbsession, None, strict, merchant_id=owner.id, url="http://127.0.0.1/", events=["*"]
        )
    assert refused.value.code == "invalid_url"


def test_another_merchants_endpoint_is_not_found_on_every_verb(
    testapp, dbsession, settings, merchant
):
    _owner, headers = merchant
    endpoint_id = _create(testapp, headers).json["id"]
    _other, other = merchant_headers(dbsession, settings)

    testapp.get(f"{API}/{endpoint_id}", headers=other, status=404)
    testapp.patch_json(f"{API}/{endpoint_id}", {"enabled": False}, headers=other, status=404)
    testapp.delete(f"{API}/{endpoint_id}", headers=other, status=404)
    testapp.get(f"{API}/{endpoint_id}/deliveries", headers=other, status=404)
    testapp.post(f"{API}/{endpoint_id}/deliveries/{uuid.uuid4()}/retry", headers=other, status=404)
    assert testapp.get(API, headers=other).json["data"] == []
    # and the owner's endpoint is untouched
    assert testapp.get(f"{API}/{endpoint_id}", headers=headers).json["enabled"] is True


def test_endpoints_need_credentials_and_an_api_key_may_manage_them(testapp, dbsession, merchant):
    owner, headers = merchant
    endpoint_id = _create(testapp, headers).json["id"]
    _row, key = create_api_key(dbsession, owner)

    testapp.get(API, status=401)
    testapp.get(f"{API}/{endpoint_id}", status=401)
    testapp.get(f"{API}/{endpoint_id}/deliveries", status=401)
    testapp.post_json(API, {"url": HOOK, "events": ["*"]}, status=401)
    listed = testapp.get(API, headers={"Authorization": f"Bearer {key}"}).json
    assert [e["id"] for e in listed["data"]] == [endpoint_id]


def test_the_secret_is_not_kept_for_idempotent_replay(testapp, dbsession, merchant):
    owner, headers = merchant
    headers = {**headers, "Idempotency-Key": "create-endpoint-1"}
    first = _create(testapp, headers).json
    second = _create(testapp, headers).json

    assert second["id"] != first["id"]
    stored = dbsession.execute(
        sa.text("SELECT count(*) FROM idempotency_keys WHERE merchant_id = :m"), {"m": owner.id}
    ).scalar()
    assert stored == 0
