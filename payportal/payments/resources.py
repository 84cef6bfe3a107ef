"""Traversal contexts of the payments API: the merchant's payments, one payment, statistics."""

from __future__ import annotations

import re

from pyramid.authorization import DENY_ALL

from payportal.payments.services import find_payment
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
        payment = find_payment(self.dbsession, self.merchant_id, name)
        if payment is None:
            raise KeyError(name)
        return PaymentResource(self, name, payment)


class PaymentResource(MerchantObject):
    """One payment of the requesting merchant."""

    path_template = "/payments/{reference}"

    @property
    def __acl__(self):
        if self.obj is None:
            return [DENY_ALL]
        return merchant_acl(self.obj.merchant_id)


class PaymentStatistics(Resource):
    """Aggregates over the merchant's payments; its ACL is the collection's."""

    path_template = "/payments/statistics"

    @property
    def merchant_id(self):
        return self.__parent__.merchant_id
