"""payment_methods slice."""


def includeme(config):
    pass
