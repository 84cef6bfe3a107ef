"""DATABASE_REPLICA_URL: lists and reports read from the replica, which can never write."""

import pytest
import sqlalchemy as sa
import transaction
from pyramid.interfaces import IRequestFactory
from pyramid.request import Request

from payportal import main


@pytest.fixture(scope="module")
def replica_app(app_settings):
    # the test database stands in for a replica: what matters is which engine serves the read
    app = main(
        {}, **{**app_settings, "payportal.database_replica_url": app_settings["sqlalchemy.url"]}
    )
    yield app
    app.registry.dbengine.dispose()
    app.registry.replica_engine.dispose()


def make_request(app) -> Request:
    """A request as the application makes them (its request class has request.dbsession...)."""
    request = app.registry.getUtility(IRequestFactory).blank("/api/v1/payments")
    request.registry = app.registry
    return request


def test_read_session_uses_the_replica_and_refuses_writes(replica_app, committed_db):
    request = make_request(replica_app)
    session = request.read_dbsession
    assert session.get_bind() is replica_app.registry.replica_engine
    assert session.execute(sa.text("SHOW default_transaction_read_only")).scalar() == "on"
    with pytest.raises(sa.exc.InternalError, match="read-only transaction"):
        session.execute(sa.text("CREATE TEMPORARY TABLE nope (id int)"))
    request._process_finished_callbacks()


def test_without_a_replica_reads_use_the_request_session(wsgi_app):
    request = make_request(wsgi_app)
    request.tm = transaction.TransactionManager(explicit=True)
    request.tm.begin()
    try:
        assert request.read_dbsession is request.dbsession
    finally:
        request.tm.abort()
