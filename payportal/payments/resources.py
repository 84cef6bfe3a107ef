"""Traversal contexts of the payments API: the merchant's payments, one payment, statistics."""

from __future__ import annotations

import re

from pyramid.authorization import DENY_ALL

from payportal.payments.models import Payment
from payportal.payments.services import find_payment_row
from payportal.resources import MerchantCollection, MerchantObject, Resource, merchant_acl

# what new_reference makes: 'pay_' + url-safe base64; anything else is a view name or nothing
REFERENCE = re.compile(r"^pay_[A-Za-z0-9_-]{20,36}$")


class PaymentCollection(MerchantCollection):
    """The requesting merchant's payments; GET lists them, 'initialize' creates one."""

    path_template = "/payments"

    def __getitem__(self, name: str):
        if name == "statistics":
            return PaymentStatistics(self, name)
        if not REFERENCE.match(name):
            raise KeyError(name)
        if self.merchant_id is None:
            # nobody signed in: a context that denies all, so the answer is 401, not 404
            return PaymentResource(self, name, None)
        row = find_payment_row(self.dbsession, self.merchant_id, name)
        if row is None:
            raise KeyError(name)
        return PaymentResource(self, name, row)


class PaymentResource(MerchantObject):
    """One payment of the requesting merchant.

    Traversal reads it as a row of the columns the API shows (`row`: enough to authorize and to
    answer a GET, without the ORM's cost); views that change it or show more load the mapped
    object (`obj`) when they first ask for it.
    """

    path_template = "/payments/{reference}"

    def __init__(self, parent, name: str, row):
        Resource.__init__(self, parent, name)
        self.row = row
        self._obj = None

    @property
    def obj(self) -> Payment | None:
        if self._obj is None and self.row is not None:
            self._obj = self.__parent__.dbsession.get(Payment, self.row.id)
        return self._obj

    @property
    def __acl__(self):
        if self.row is None:
            return [DENY_ALL]
        return merchant_acl(self.row.merchant_id)


class PaymentStatistics(Resource):
    """Aggregates over the merchant's payments; its ACL is the collection's."""

    path_template = "/payments/statistics"

    @property
    def merchant_id(self):
        return self.__parent__.merchant_id
