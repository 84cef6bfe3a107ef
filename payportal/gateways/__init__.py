"""gateways slice."""


def includeme(config):
    pass
