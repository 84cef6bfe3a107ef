"""json/jsonb columns come back as the json module would parse them, though pydantic-core's
parser reads them (payportal.db.make_engine)."""

import json

import psycopg
import pydantic_core
import pytest
import sqlalchemy as sa

from payportal import db

DOCUMENTS = [
    "{}",
    "[]",
    '{"order": "ord_123", "nested": {"list": [1, 2.5, null, true, false, "x"]}}',
    '{"big": 123456789012345678901234567890, "negative": -42, "exp": 1.5e300, "zero": -0.0}',
    '{"unicode": "\\u00e9t\\u00e9 \\ud83d\\ude00", "escapes": "tab\\tquote\\"slash\\\\"}',
    '"just a string"',
    "12345678901234567890.125",
]


@pytest.fixture(scope="module")
def engine(database_url):
    engine = db.make_engine(database_url, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("column_type", ["json", "jsonb"])
@pytest.mark.parametrize("document", DOCUMENTS)
def test_a_document_reads_back_as_the_json_module_parses_it(engine, column_type, document):
    with engine.connect() as connection:
        value = connection.scalar(
            sa.text(f"SELECT CAST(:document AS {column_type})"), {"document": document}
        )
        stored = connection.scalar(
            sa.text(f"SELECT CAST(CAST(:document AS {column_type}) AS text)"),
            {"document": document},
        )
    assert value == json.loads(stored)
    assert type(value) is type(json.loads(stored))


def test_the_connections_parse_with_pydantic_core(engine):
    with engine.connect() as connection:
        driver = connection.connection.driver_connection
        oid = driver.adapters.types["jsonb"].oid
        loader = driver.adapters.get_loader(oid, psycopg.pq.Format.TEXT)(oid, driver)
    assert loader.loads is pydantic_core.from_json
