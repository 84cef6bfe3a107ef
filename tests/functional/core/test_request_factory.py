"""The request extensions are built into the request class at start-up
(payportal.requestfactory): every request the application makes has them, and no request pays
for a class of its own."""

from pyramid.interfaces import IRequestExtensions, IRequestFactory
from pyramid.request import Request


def test_every_request_of_the_app_is_of_one_class_that_has_the_extensions(wsgi_app):
    seen = []

    def view_of_classes(environ, start_response):
        request = wsgi_app.request_factory(environ)
        seen.append(type(request))
        return []

    factory = wsgi_app.registry.getUtility(IRequestFactory)
    assert issubclass(factory, Request)
    for name in ("dbsession", "read_dbsession", "tm", "correlation_id", "dashboard_session",
                 "csrf_token"):  # fmt: skip
        assert hasattr(factory, name), name
    # nothing is left for Pyramid to apply per request
    assert wsgi_app.registry.queryUtility(IRequestExtensions) is None
    assert wsgi_app.request_extensions is None
    for path in ("/healthz", "/api/v1/payments"):
        view_of_classes(Request.blank(path).environ, None)
    assert seen == [factory, factory]


def test_the_extensions_work_on_a_request_made_by_the_app(testapp):
    # /healthz answers from a session (request.dbsession) inside request.tm's transaction, and
    # the correlation id (a reified property) comes back as a header
    response = testapp.get("/healthz", headers={"X-Correlation-ID": "probe-123"})
    assert response.headers["X-Correlation-ID"] == "probe-123"
