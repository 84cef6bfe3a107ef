"""schemathesis against the live WSGI app with one merchant's credentials (its API key where the
operation takes one, its access token otherwise, in turn): every operation, at least 50 generated
requests each (valid and invalid ones, and the document's own examples), and not one server
error, undocumented status, media type, header or response body."""

from __future__ import annotations

import itertools

import hypothesis
import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session

from payportal.events.endpoints import create_endpoint
from payportal.events.models import OutboxEvent
from tests.factories import (
    access_token,
    create_api_key,
    create_merchant,
    create_payment,
    create_payment_method,
)

EXAMPLES_PER_OPERATION = 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# every other request names one of the merchant's real objects, so success responses are
# exercised as much as the 404s of generated ids
KNOWN_OBJECTS = {
    "/payments/{reference}": "payment",
    "/payment-methods/{id}": "payment_method",
    "/webhook-endpoints/{id}": "webhook_endpoint",
    "/events/{id}": "event",
}
HYPOTHESIS_SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    # the app answers through WSGI in-process; slow data generation is the point, not a problem
    suppress_health_check=list(HealthCheck),
    # one failing example is enough to report; shrinking it would cost minutes
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    print_blob=False,
)


@pytest.fixture
def merchant_world(wsgi_app, committed_db):
    """One active merchant with a settled payment, a card, an endpoint and their credentials."""
    settings = wsgi_app.registry.payportal_settings
    keyring = wsgi_app.registry.keyring
    with Session(bind=committed_db, expire_on_commit=False) as session:
        merchant = create_merchant(session, settings)
        _row, api_key = create_api_key(session, merchant)
        payment = create_payment(session, settings, merchant, status="completed")
        method = create_payment_method(session, keyring, merchant)
        endpoint, _secret = create_endpoint(
            session,
            keyring,
            settings,
            merchant_id=merchant.id,
            url="https://example.com/payportal/webhooks",
            events=["*"],
            description=None,
            actor="test",
        )
        event_id = session.scalars(
            sa.select(OutboxEvent.id).where(OutboxEvent.merchant_id == merchant.id).limit(1)
        ).one()
        session.commit()
    return {
        "jwt": access_token(settings, merchant),
        "apiKey": api_key,
        "payment": payment.reference,
        "payment_method": str(method.id),
        "webhook_endpoint": str(endpoint.id),
        "event": str(event_id),
    }


def credentials_for(operation, turn: int, world: dict) -> dict[str, str]:
    schemes = [name for need in operation.definition.raw.get("security", []) for name in need]
    if not schemes:
        return {}
    scheme = "apiKey" if "apiKey" in schemes and turn % 2 else "jwt"
    return {"Authorization": f"Bearer {world[scheme]}"}


def name_known_object(case, turn: int, world: dict) -> None:
    for prefix, kind in KNOWN_OBJECTS.items():
        if case.operation.path.startswith(prefix) and turn % 2 == 0:
            name = prefix.rsplit("{", 1)[1].rstrip("}")
            case.path_parameters[name] = world[kind]


def exercise(schema, operation, world: dict) -> tuple[int, str | None]:
    """Run one operation's generated requests: (how many ran, the first failure or None)."""
    sent = itertools.count()
    cases = st.one_of(
        *schema.get_strategies_from_examples(operation),
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @HYPOTHESIS_SETTINGS
    @hypothesis.given(case=cases)
    def run(case):
        turn = next(sent)
        name_known_object(case, turn, world)
        case.call_and_validate(headers=credentials_for(operation, turn, world), checks=CHECKS)

    try:
        run()
        # then schemathesis' coverage cases: each boundary and each kind of invalid value, once
        for case in schema.iter_coverage_cases(
            operation,
            generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
            generation_config=schema.config.generation_for(operation=operation),
        ):
            turn = next(sent)
            name_known_object(case, turn, world)
            case.call_and_validate(headers=credentials_for(operation, turn, world), checks=CHECKS)
    # the failure of one operation must not hide the others' (schemathesis raises a group)
    except (Exception, BaseExceptionGroup) as exc:
        return next(sent), f"{operation.label}: {exc}"
    return next(sent), None


def test_every_operation_answers_as_documented(wsgi_app, merchant_world):
    config = schemathesis.Config.from_dict({"generation": {"database": "none"}})
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", wsgi_app, config=config)
    operations = [result.ok() for result in schema.get_all_operations()]
    # deletions last, so the merchant's objects are there for every other operation
    operations.sort(key=lambda op: op.method.upper() == "DELETE")
    documented = {
        (method.upper(), path)
        for path, item in schema.raw_schema["paths"].items()
        for method in item
    }
    assert {(op.method.upper(), op.path) for op in operations} == documented

    failures, counts = [], {}
    for operation in operations:
        counts[operation.label], failure = exercise(schema, operation, merchant_world)
        if failure is not None:
            failures.append(failure)
    assert not failures, "\n\n".join(failures)
    too_few = {label: n for label, n in counts.items() if n < EXAMPLES_PER_OPERATION}
    assert not too_few, f"operations tried fewer than {EXAMPLES_PER_OPERATION} times: {too_few}"
