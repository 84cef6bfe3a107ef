"""The generated OpenAPI document describes the payment-methods endpoints as they behave."""

from openapi_spec_validator import validate


def test_payment_method_operations_are_documented(testapp):
    document = testapp.get("/api/v1/openapi.json").json
    validate(document)
    paths = document["paths"]
    assert set(paths["/payment-methods"]) == {"get", "post"}
    assert set(paths["/payment-methods/{id}"]) == {"get", "put", "delete"}
    assert set(paths["/payment-methods/{id}/default"]) == {"put"}
    assert "201" in paths["/payment-methods"]["post"]["responses"]
    assert "204" in paths["/payment-methods/{id}"]["delete"]["responses"]
    assert "404" in paths["/payment-methods/{id}/default"]["put"]["responses"]
    query = {p["name"] for p in paths["/payment-methods"]["get"]["parameters"]}
    assert {"type", "status", "limit", "cursor"} <= query


def test_request_schemas_refuse_unknown_fields_and_have_no_cvv(testapp):
    schemas = testapp.get("/api/v1/openapi.json").json["components"]["schemas"]
    for name in ("CreatePaymentMethod", "CardIn", "BankAccountIn", "MobileMoneyIn"):
        assert schemas[name]["additionalProperties"] is False
    assert set(schemas["CardIn"]["properties"]) == {
        "number",
        "exp_month",
        "exp_year",
        "holder_name",
    }
    assert set(schemas["CardIn"]["required"]) == {"number", "exp_month", "exp_year"}
    out = schemas["PaymentMethodOut"]["properties"]
    assert not {"number", "account_number", "phone_number", "sealed_details"} & set(out)
