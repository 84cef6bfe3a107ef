"""The dashboard's front door: /dashboard/ leads to the overview (or to sign-in)."""

from __future__ import annotations

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from payportal.resources import PortalRoot
from payportal.security import Permission


@view_config(route_name="portal", context=PortalRoot, name="", permission=Permission.PUBLIC)
def dashboard_entry(context, request):
    target = "home" if request.identity is not None else "login"
    return HTTPSeeOther(location=f"{request.application_url}/dashboard/{target}")
