"""payments slice: payments, the state machine, refunds, statistics and the expiry sweep."""


def includeme(config):
    from payportal.payments.resources import PaymentCollection

    config.add_resource_child("api", "payments", PaymentCollection)
