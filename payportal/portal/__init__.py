"""The dashboard's web plumbing: sessions, CSRF, security headers, template helpers, and the
merchant-scoped pages that belong to no single slice (overview, settings, developers)."""

from payportal.portal.resources import PORTAL_CHILDREN
from payportal.portal.templating import register_helpers


def includeme(config):
    # the session cookie becomes an identity under /dashboard and /admin only
    config.include("payportal.portal.sessions")
    # every unsafe dashboard/admin request must carry the session's token
    config.include("payportal.portal.csrf")
    # CSP, nosniff, referrer policy, HSTS on HTML pages
    config.include("payportal.portal.headers")
    # money, dates, badges and links in templates
    register_helpers(config)
    # the same collections the API serves, mounted under /dashboard too (one tree, two faces)
    for name, factory in PORTAL_CHILDREN:
        config.add_resource_child("portal", name, config.maybe_dotted(factory))
