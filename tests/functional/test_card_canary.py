"""Canary: after card (and bank, mobile) methods are recorded, no table and no log line holds a
full card, account or phone number in clear."""

import logging

import sqlalchemy as sa

from payportal.db import load_all_models
from tests.factories import card_method_body, merchant_headers

URL = "/api/v1/payment-methods"
CARD_NUMBERS = [
    "4242424242424242",  # visa
    "5555555555554444",  # mastercard
    "2223003122003222",  # mastercard 2-series
    "378282246310005",  # amex
    "6011111111111117",  # discover
    "3566002020360505",  # jcb
    "36227206271667",  # diners
]
ACCOUNT_NUMBER = "GB82WEST12345698765432"
PHONE_NUMBER = "+254712345678"


def dump_every_table(connection) -> str:
    """Every row of every table, as PostgreSQL renders it to JSON (bytea shows as hex)."""
    rows = []
    for table in load_all_models().sorted_tables:
        rows += connection.execute(
            sa.text(f'SELECT row_to_json(t)::text FROM "{table.name}" AS t')  # noqa: S608
        ).scalars()
    return "\n".join(rows)


def test_no_table_or_log_holds_a_full_card_number(testapp, dbsession, connection, settings, caplog):
    caplog.set_level(logging.DEBUG)
    merchant, headers = merchant_headers(dbsession, settings)
    created = []
    for index, number in enumerate(CARD_NUMBERS):
        # one spaced the way people type it, and every POST retried under an idempotency key
        typed = " ".join(number[i : i + 4] for i in range(0, len(number), 4)) if index else number
        request_headers = {**headers, "Idempotency-Key": f"canary-{index}"}
        for _attempt in range(2):
            r = testapp.post_json(URL, card_method_body(typed), headers=request_headers, status=201)
        created.append(r.json["id"])
    testapp.post_json(
        URL,
        {
            "name": "Payroll",
            "type": "bank_account",
            "bank_account": {
                "bank_name": "First Bank",
                "account_number": ACCOUNT_NUMBER,
                "account_holder_name": "Acme Ltd",
            },
        },
        headers=headers,
        status=201,
    )
    testapp.post_json(
        URL,
        {
            "name": "Till",
            "type": "mobile_money",
            "mobile_money": {"provider": "mpesa", "phone_number": PHONE_NUMBER},
        },
        headers=headers,
        status=201,
    )
    # the methods go through updates, a default move and a delete too
    testapp.put_json(f"{URL}/{created[1]}", {"name": "Renamed"}, headers=headers)
    testapp.put(f"{URL}/{created[2]}/default", headers=headers)
    testapp.delete(f"{URL}/{created[3]}", headers=headers, status=204)
    # a card number that fails validation is not kept either (not even in a stored response)
    refused = "4000056655665557"
    testapp.post_json(
        URL,
        card_method_body(refused),
        headers={**headers, "Idempotency-Key": "canary-refused"},
        status=422,
    )

    dump = dump_every_table(connection)
    assert str(merchant.id) in dump  # the dump does see this test's rows
    assert dump.count('"last4"') >= len(CARD_NUMBERS) + 2
    secrets = [*CARD_NUMBERS, refused, ACCOUNT_NUMBER, PHONE_NUMBER.lstrip("+")]
    for secret in secrets:
        assert secret not in dump, f"{secret[:4]}... found in clear in the database"
        assert secret.encode().hex() not in dump, f"{secret[:4]}... found hex-encoded"
        assert secret not in caplog.text, f"{secret[:4]}... found in the logs"
