"""Test-only probes mounted with `pyramid.includes`: API and portal views that exercise the house's
request path (body parsing, domain errors, crashes, transactions) before any product view exists."""

from __future__ import annotations

import sqlalchemy as sa
import zope.sqlalchemy
from pydantic import BaseModel, ConfigDict, Field
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from payportal.apiview import AUTH_NONE, api_view
from payportal.errors import Conflict
from payportal.merchants.models import Operator
from payportal.resources import ApiRoot, PortalRoot
from payportal.security import Permission

# what the crashing probes put in their exception: it must reach the log and never a response
CRASH_MESSAGE = "ledger exploded while holding card 4242424242424242"
ATTEMPT_KEY = "payportal.probe_attempt"
SERIALIZATION_FAILURE = (
    "DO $$ BEGIN RAISE EXCEPTION 'probe lost a race'"
    " USING ERRCODE = 'serialization_failure'; END $$"
)


class ProbeCharge(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    amount: int = Field(gt=0, le=99_999_999_999)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    description: str | None = Field(None, max_length=500)


class ProbeChargeOut(BaseModel):
    amount: int
    currency: str
    description: str | None


class ProbeOperator(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    email: str = Field(min_length=3, max_length=320)
    outcome: str = Field(pattern=r"^(commit|conflict|crash)$")


class ProbeOperatorOut(BaseModel):
    email: str


@api_view(
    context=ApiRoot,
    name="probe-charges",
    method="POST",
    permission=Permission.PUBLIC,
    body=ProbeCharge,
    response=ProbeChargeOut,
    status=201,
    auth=AUTH_NONE,
    tag="Probes",
    summary="Echo a charge back (test probe)",
)
def create_probe_charge(context, request, body: ProbeCharge):
    return ProbeChargeOut(**body.model_dump())


@api_view(
    context=ApiRoot,
    name="probe-operators",
    method="POST",
    permission=Permission.PUBLIC,
    body=ProbeOperator,
    response=ProbeOperatorOut,
    status=201,
    auth=AUTH_NONE,
    errors=(409,),
    tag="Probes",
    summary="Write a row, then commit, conflict or crash (test probe)",
)
def create_probe_operator(context, request, body: ProbeOperator):
    session = request.dbsession
    session.execute(sa.insert(Operator).values(email=body.email, password_hash="x" * 60))
    zope.sqlalchemy.mark_changed(session)
    if body.outcome == "conflict":
        raise Conflict(
            "this operator clashes with another",
            code="operator_clash",
            details=[{"field": "email", "message": "already taken"}],
        )
    if body.outcome == "crash":
        raise RuntimeError(CRASH_MESSAGE)
    return ProbeOperatorOut(email=body.email)


class ProbeRetry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    email: str = Field(min_length=3, max_length=320)
    failures: int = Field(ge=0, le=5)


class ProbeRetryOut(BaseModel):
    email: str
    attempt: int


@api_view(
    context=ApiRoot,
    name="probe-retries",
    method="POST",
    permission=Permission.PUBLIC,
    body=ProbeRetry,
    response=ProbeRetryOut,
    status=201,
    auth=AUTH_NONE,
    tag="Probes",
    summary="Write a row, then lose a serialization race `failures` times (test probe)",
)
def create_probe_retry(context, request, body: ProbeRetry):
    # the environ outlives a pyramid_retry attempt; the request object does not
    attempt = request.environ[ATTEMPT_KEY] = request.environ.get(ATTEMPT_KEY, 0) + 1
    session = request.dbsession
    session.execute(sa.insert(Operator).values(email=body.email, password_hash="x" * 60))
    zope.sqlalchemy.mark_changed(session)
    if attempt <= body.failures:
        session.execute(sa.text(SERIALIZATION_FAILURE))
    return ProbeRetryOut(email=body.email, attempt=attempt)


@api_view(
    context=ApiRoot,
    name="probe-crash",
    method="GET",
    permission=Permission.PUBLIC,
    auth=AUTH_NONE,
    tag="Probes",
    summary="Fail with an unexpected exception (test probe)",
)
def crash_probe(context, request):
    raise RuntimeError(CRASH_MESSAGE)


@view_config(
    route_name="portal", context=PortalRoot, name="probe-crash", permission=NO_PERMISSION_REQUIRED
)
def crash_portal_probe(request):
    raise RuntimeError(CRASH_MESSAGE)


def includeme(config):
    # pyramid.includes run before main()'s own includes; these two must exist before the scan
    # (Pyramid includes each module once, so main() does not run them again)
    config.include("payportal.resources")
    config.include("payportal.apiview")
    config.scan(__name__)
