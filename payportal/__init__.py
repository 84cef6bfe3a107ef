"""payportal: a self-hostable multi-tenant payment platform (Pyramid application factory)."""

import os

from pyramid.config import Configurator

from payportal.portal.templating import TemplateRenderers
from payportal.requestfactory import bake_request_extensions

# templates/ and static/ sit beside the package, at the top of the checkout
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(global_config, **settings):
    """Build the WSGI application from the .ini settings (environment variables override)."""
    settings.setdefault("tm.manager_hook", "pyramid_tm.explicit_manager")
    settings.setdefault("retry.attempts", "3")
    # an oversized body is refused unread, not copied to be replayable first
    settings.setdefault("retry.activate_hook", "payportal.apiview.retry_attempts")
    settings.setdefault("jinja2.directories", os.path.join(PROJECT_ROOT, "templates"))
    with Configurator(settings=settings) as config:
        # typed settings first: everything after reads config.registry.payportal_settings
        config.include("payportal.settings")
        # engine, session factory and request.dbsession joined to the request's transaction
        config.include("payportal.db")
        # one transaction per request, committed after the view, aborted on error
        config.include("pyramid_tm")
        # re-run a request that hit a serialization failure or deadlock (3 attempts)
        config.include("pyramid_retry")
        # server-rendered pages from the top-level templates/ folder
        config.include("pyramid_jinja2")
        config.add_jinja2_renderer(".html")
        # .jinja2 names as given, without a failed package-relative lookup per render
        config.add_renderer(".jinja2", TemplateRenderers())
        # CSS, icons and the little JS, from the top-level static/ folder
        config.include("payportal.static")
        # AES-256-GCM keyring for sensitive fields
        config.include("payportal.crypto")
        # who is asking (JWT, API key, session) and what they may do (credential table + ACLs)
        config.include("payportal.merchants.policy")
        # the traversal roots: /api/v1, /dashboard, /admin
        config.include("payportal.resources")
        # JSON envelope under /api, HTML pages elsewhere
        config.include("payportal.errors")
        # dashboard plumbing: cookie sessions, CSRF, security headers on HTML pages
        config.include("payportal.portal")
        # correlation id on every response and one access-log line per request
        config.include("payportal.logging")
        # the API view registry and the OpenAPI document + Swagger UI built from it
        config.include("payportal.apiview")
        config.include("payportal.openapi")
        # /healthz and /readyz
        config.include("payportal.health")
        # /metrics (Prometheus) and the request-timing tween its view's route needs
        config.include("payportal.metrics")
        # CORS for /api (origins from settings) and per-credential token buckets
        config.include("payportal.cors")
        config.include("payportal.ratelimit")
        # the slices, each registering its own resources and views
        config.include("payportal.merchants")
        config.include("payportal.payment_methods")
        config.include("payportal.payments")
        config.include("payportal.events")
        config.include("payportal.gateways")
        config.include("payportal.admin")
        config.scan("payportal", ignore=["payportal.scripts"])
        # request.dbsession, request.tm, ... on the request class once, not per request
        bake_request_extensions(config)
        return config.make_wsgi_app()
