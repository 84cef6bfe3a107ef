"""Test-only views mounted with `pyramid.includes`: which worker process answered, and on which
database connection, optionally after a while; what its garbage collector has frozen."""

import gc
import os
import time

import sqlalchemy as sa
from pyramid.events import ApplicationCreated
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config


@view_config(route_name="worker_pid", permission=NO_PERMISSION_REQUIRED)
def worker_pid(request):
    time.sleep(float(request.params.get("seconds", "0")))
    backend = request.dbsession.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    return Response(body=f"{os.getpid()} {backend}".encode(), content_type="text/plain")


@view_config(route_name="worker_gc", permission=NO_PERMISSION_REQUIRED)
def worker_gc(request):
    """The worker's pid and how many objects its garbage collector leaves alone (frozen)."""
    return Response(
        body=f"{os.getpid()} {gc.get_freeze_count()}".encode(), content_type="text/plain"
    )


def open_a_pooled_connection(event):
    # like an application that reads the database while it loads: the process that forks the
    # workers then holds a pooled connection they must never share
    registry = event.app.registry
    with registry.dbengine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))


def includeme(config):
    config.add_route("worker_pid", "/worker-pid")
    config.add_route("worker_gc", "/worker-gc")
    config.add_subscriber(open_a_pooled_connection, ApplicationCreated)
    config.scan(__name__)
