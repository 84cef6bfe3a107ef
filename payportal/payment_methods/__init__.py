"""payment_methods slice: cards, bank accounts, mobile money and wallets, sealed at rest."""


def includeme(config):
    from payportal.payment_methods.resources import PaymentMethodCollection

    config.add_resource_child("api", "payment-methods", PaymentMethodCollection)
