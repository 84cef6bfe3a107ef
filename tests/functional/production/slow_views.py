"""Test-only view mounted with `pyramid.includes`: a request that takes a while to answer."""

import time

from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config


@view_config(route_name="slow", permission=NO_PERMISSION_REQUIRED)
def slow_view(request):
    time.sleep(float(request.params.get("seconds", "1")))
    return Response(body=b"finished", content_type="text/plain")


def includeme(config):
    config.add_route("slow", "/slow")
    config.scan(__name__)
