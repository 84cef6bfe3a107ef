"""The operator console's tree under /admin: every merchant, and each merchant's payments.

Only operators get past AdminRoot's ACL; lookups happen only for them, so nobody else can
even learn whether an id exists.
"""

from __future__ import annotations

from pyramid.httpexceptions import HTTPForbidden

from payportal.merchants.models import Merchant
from payportal.payments.resources import REFERENCE
from payportal.payments.services import find_payment
from payportal.resources import Resource, parse_uuid


def _require_operator(request) -> None:
    identity = request.identity
    if identity is None or not identity.is_operator:
        raise HTTPForbidden()


class AdminMerchantCollection(Resource):
    """/admin/merchants: every merchant of the platform."""

    def __getitem__(self, name: str):
        merchant_id = parse_uuid(name)
        _require_operator(self.request)
        merchant = self.request.dbsession.get(Merchant, merchant_id)
        if merchant is None:
            raise KeyError(name)
        return AdminMerchant(self, name, merchant)


class AdminMerchant(Resource):
    """/admin/merchants/<id>: one merchant; its payments below."""

    def __init__(self, parent, name: str, merchant: Merchant):
        super().__init__(parent, name)
        self.merchant = merchant

    def __getitem__(self, name: str):
        if name == "payments":
            return AdminMerchantPayments(self, name, self.merchant)
        raise KeyError(name)


class AdminMerchantPayments(Resource):
    """/admin/merchants/<id>/payments: read-only."""

    def __init__(self, parent, name: str, merchant: Merchant):
        super().__init__(parent, name)
        self.merchant = merchant

    def __getitem__(self, name: str):
        if not REFERENCE.match(name):
            raise KeyError(name)
        payment = find_payment(self.request.dbsession, self.merchant.id, name)
        if payment is None:
            raise KeyError(name)
        return AdminPayment(self, name, payment)


class AdminPayment(Resource):
    def __init__(self, parent, name: str, payment):
        super().__init__(parent, name)
        self.payment = payment
