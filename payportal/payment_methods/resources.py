"""Traversal contexts of payment methods: the merchant's collection and one method in it."""

from __future__ import annotations

from payportal.payment_methods.models import PaymentMethod
from payportal.payment_methods.services import find_payment_method
from payportal.resources import MerchantCollection, MerchantObject, merchant_acl, parse_uuid


class PaymentMethodCollection(MerchantCollection):
    path_template = "/payment-methods"

    def __getitem__(self, name: str) -> PaymentMethodResource:
        method_id = parse_uuid(name)  # not an id: a view name, or simply not found
        if self.merchant_id is None:
            # nobody signed in: a closed context, so the answer is 401 and nothing is looked up
            return PaymentMethodResource(self, name, None)
        method = find_payment_method(self.dbsession, self.merchant_id, method_id)
        if method is None:
            raise KeyError(name)  # another merchant's method is not found, never forbidden
        return PaymentMethodResource(self, name, method)


class PaymentMethodResource(MerchantObject):
    path_template = "/payment-methods/{id}"

    obj: PaymentMethod | None

    @property
    def __acl__(self):
        return merchant_acl(self.obj.merchant_id if self.obj is not None else None)
