"""The request class, with every request method and property the configuration added built in.

Pyramid applies `config.add_request_method` extensions to each request as it is made: it creates
a new class per request holding the properties (request.dbsession, request.tm, ...) and binds the
methods one by one. That costs ~60 µs of every request, and every attribute looked up on a class
seen for the first time misses the interpreter's type cache. Done once here instead, at start-up,
on a subclass of the configured request factory, which then replaces the extensions: a request
made by the application (the router, pyramid_retry's attempts, `pyramid.scripting.prepare`) has
them all, exactly as before.
"""

from __future__ import annotations

from pyramid.interfaces import IRequestExtensions, IRequestFactory
from pyramid.request import Request


def bake_request_extensions(config) -> None:
    """Move the committed request extensions onto the request factory's class. Call after the
    last `add_request_method` has been committed and before `make_wsgi_app`."""
    config.commit()
    registry = config.registry
    extensions = registry.queryUtility(IRequestExtensions)
    if extensions is None:
        return
    factory = registry.queryUtility(IRequestFactory, default=Request)
    attributes = {**extensions.methods, **extensions.descriptors}
    attributes["__module__"] = factory.__module__
    baked = type(factory.__name__, (factory,), attributes)
    registry.registerUtility(baked, IRequestFactory)
    registry.unregisterUtility(extensions, IRequestExtensions)
