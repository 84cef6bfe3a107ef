"""Static files from the top-level static/ folder, and Swagger UI's assets from its package."""

import os

from pyramid.security import NO_PERMISSION_REQUIRED

STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "static")


def includeme(config):
    config.add_static_view(
        "static", STATIC_DIR, cache_max_age=3600, permission=NO_PERMISSION_REQUIRED
    )
