"""Card canary on every field: Luhn-valid test card numbers and CVV-like values sent in every
string field of every API body and in every gateway's webhook -> no full card number in any
table (the outbox rows are the SQS message bodies), in the logs, or in a response."""

from __future__ import annotations

import itertools
import json
import logging
import re

from payportal.events.models import OutboxEvent
from payportal.events.services import envelope
from tests.factories import access_token, bearer, create_merchant, create_payment_row
from tests.functional.gateways.conftest import GATEWAYS, encode
from tests.functional.test_card_canary import dump_every_table
from tests.functional.test_tenancy import World
from tests.reliability.test_hostile_input import body_operations, key, targets

CARDS = [
    "4111111111111111",  # visa
    "5105105105105100",  # mastercard
    "371449635398431",  # amex
    "6011000990139424",  # discover
    "3530111333300000",  # jcb
    "4000056655665556",  # visa debit
]
CVV = "737"
SEALED_OR_SECRET = {"card.number", "current_password", "new_password", "password"}


def card_texts():
    """The ways a card number turns up in free text: bare, typed in groups, inside words."""
    for index, number in enumerate(itertools.cycle(CARDS)):
        groups = [number[i : i + 4] for i in range(0, len(number), 4)]
        yield [
            number,
            f"card {' '.join(groups)} cvv {CVV}",
            f"pan:{'-'.join(groups)}",
            f"ref{number}x",
        ][index % 4]


def string_paths(schema: dict, defs: dict, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted path, kind) of every string in a JSON schema: kind is 'value' or 'mapping' (an
    object of free keys, like metadata)."""
    found = []
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        options = prop.get("anyOf", [prop])
        for option in options:
            if "$ref" in option:
                found += string_paths(defs[option["$ref"].split("/")[-1]], defs, f"{path}.")
            elif option.get("type") == "string":
                found.append((path, "value"))
            elif option.get("type") == "object" and "additionalProperties" in option:
                found.append((path, "mapping"))
    return sorted(set(found))


def with_value(body: dict, path: str, value) -> dict:
    body = json.loads(json.dumps(body))
    *parents, leaf = path.split(".")
    node = body
    for parent in parents:
        node = node.setdefault(parent, {})
    node[leaf] = value
    return body


def full_numbers_in(text: str) -> list[str]:
    digits_only = re.sub(r"[\s-]", "", text)
    return [n for n in CARDS if n in text or n in digits_only]


def test_no_card_number_sent_in_any_string_field_is_kept_anywhere(
    testapp, wsgi_app, dbsession, connection, settings, caplog
):
    """Scenario 12. Card numbers go only into payment-methods' card.number, which seals them;
    in any other string, a value, a metadata key or a metadata value, a card number is refused
    with 422 "must not contain a card number" (see docs/reliability.md)."""
    caplog.set_level(logging.DEBUG)
    merchant = create_merchant(dbsession, settings)
    headers = bearer(access_token(settings, merchant))
    world = World(dbsession, settings, wsgi_app.registry.keyring)
    found = targets(wsgi_app, world, merchant)
    texts = card_texts()
    sent = 0
    accepted = set()
    answers = []
    for op in body_operations(wsgi_app):
        schema = op.body.model_json_schema()
        for path, kind in string_paths(schema, schema.get("$defs", {})):
            text = next(texts)
            target = found[key(op)]
            values = [{"note": text}, {text[:40]: "x"}] if kind == "mapping" else [text]
            for value in values:
                body = with_value(target.body, path, value)
                r = testapp.request(
                    target.url,
                    method=op.method,
                    headers={**headers, "Content-Type": "application/json"},
                    body=json.dumps(body).encode(),
                    expect_errors=True,
                )
                sent += 1
                answers.append(r.text)
                assert r.status_int < 500, f"{key(op)} {path}: {r.status}"
                if r.status_int < 300:
                    accepted.add(path)

    for gateway in GATEWAYS.values():
        payment = create_payment_row(dbsession, settings, merchant, currency=gateway.currency)
        dbsession.flush()
        event = gateway.completed(payment)
        event["note"] = f"card {CARDS[0]} cvv {CVV}"
        event.setdefault("data", {})["customer"] = {"card": CARDS[1], "cvv": CVV}
        raw = encode(event)
        r = testapp.post(
            gateway.url, raw, headers=gateway.sign(raw), content_type="application/json"
        )
        answers.append(r.text)
        assert r.json["outcome"] == "processed", (gateway.name, r.json)

    dbsession.expire_all()
    dump = dump_every_table(connection)
    assert str(merchant.id) in dump
    assert not full_numbers_in(dump), "a full card number is stored"
    assert not full_numbers_in(caplog.text), "a full card number is in the logs"
    assert not full_numbers_in("\n".join(answers)), "a full card number is in a response"
    # what goes to SQS is the outbox row's envelope: none of them carries one either
    events = dbsession.query(OutboxEvent).filter_by(merchant_id=merchant.id).all()
    assert events
    assert not full_numbers_in("\n".join(json.dumps(envelope(e)) for e in events))
    assert sent >= 50
    # accepted only where a card number may go: sealed (card.number) or never stored (secrets)
    assert accepted <= SEALED_OR_SECRET, accepted - SEALED_OR_SECRET
