"""The OpenAPI document is generated from the registered views and valid OpenAPI 3.1; Swagger UI
is served from the swagger-ui-py package, every asset it loads answering from this server."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

ASSET = re.compile(r'(?:src|href)="([^"]+)"')


@pytest.fixture(params=["app", "probe_app"])
def any_testapp(request, testapp, probe_testapp):
    return {"app": testapp, "probe_app": probe_testapp}[request.param]


def test_the_document_is_valid_openapi_3_1(any_testapp):
    response = any_testapp.get("/api/v1/openapi.json")
    assert response.content_type == "application/json"
    document = response.json
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_the_document_describes_a_registered_view_from_its_models(probe_testapp):
    document = probe_testapp.get("/api/v1/openapi.json").json
    operation = document["paths"]["/probe-charges"]["post"]
    body_schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/ProbeCharge"}
    charge = document["components"]["schemas"]["ProbeCharge"]
    assert charge["additionalProperties"] is False
    assert charge["required"] == ["amount", "currency"]
    assert set(operation["responses"]) >= {"201", "400", "413", "415", "422", "500"}
    error_ref = operation["responses"]["422"]["content"]["application/json"]["schema"]
    assert error_ref == {"$ref": "#/components/schemas/Error"}
    assert operation["security"] == []


def test_swagger_ui_page_points_at_the_document(testapp):
    page = testapp.get("/api/docs")
    assert page.content_type == "text/html"
    assert 'data-spec-url="http://localhost/api/v1/openapi.json"' in page.text


def test_every_swagger_ui_asset_is_served_here(testapp):
    page = testapp.get("/api/docs")
    assets = ASSET.findall(page.text)
    assert {a.rsplit("/", 1)[-1] for a in assets} >= {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "swagger-init.js",
    }
    for url in assets:
        assert url.startswith("http://localhost/"), f"{url} is not served by payportal"
        response = testapp.get(url[len("http://localhost") :])
        assert response.status_int == 200
        assert len(response.body) > 0
        expected = {"css": "text/css", "js": "javascript", "png": "image/png"}[
            url.rsplit(".", 1)[1]
        ]
        assert expected in response.content_type


def test_every_timestamp_of_a_response_is_documented_as_a_date_time(testapp):
    """Clients generated from the document get datetimes, not strings, for every `*_at`."""
    schemas = testapp.get("/api/v1/openapi.json").json["components"]["schemas"]
    timestamps = {
        f"{name}.{prop}": spec
        for name, schema in schemas.items()
        for prop, spec in schema.get("properties", {}).items()
        if prop.endswith("_at") or prop in {"at", "created_from", "created_to"}
    }
    assert {"PaymentOut.created_at", "EventOut.created_at", "RefundOut.created_at"} <= set(
        timestamps
    )

    def formats(spec) -> set:
        options = spec.get("anyOf", [spec])
        return {o.get("format") for o in options if o.get("type") != "null"}

    undated = {name for name, spec in timestamps.items() if formats(spec) != {"date-time"}}
    assert undated == set()


def test_a_method_the_document_does_not_take_is_405_with_allow(testapp):
    response = testapp.post("/api/v1/openapi.json", status=405)
    assert response.headers["Allow"] == "GET, HEAD"
