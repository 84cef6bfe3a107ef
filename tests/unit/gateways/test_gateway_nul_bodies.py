"""U+0000 (which jsonb cannot store) is refused wherever a body carries it, though only bodies
with the escape are walked for it."""

from __future__ import annotations

import pytest

from payportal.gateways.updates import MalformedEvent, load_event_document


@pytest.mark.parametrize(
    "body",
    [
        b'{"event": "charge.success\\u0000"}',
        b'{"data": {"nested": ["a", {"deep\\u0000key": 1}]}}',
        b'{"data": {"list": ["x", "y\\u0000"]}}',
        # a raw NUL is no JSON at all
        b'{"event": "charge.success\x00"}',
        b'{"event": "charge.success"}\x00',
    ],
)
def test_a_nul_anywhere_is_malformed(body):
    with pytest.raises(MalformedEvent):
        load_event_document(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"event": "charge.success", "data": {"id": 1}}',
        # an escaped backslash before "u0000" is six ordinary characters, not a NUL
        b'{"note": "C:\\\\u0000"}',
    ],
)
def test_bodies_without_a_nul_are_accepted(body):
    assert isinstance(load_event_document(body), dict)
