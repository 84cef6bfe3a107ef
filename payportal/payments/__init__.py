"""payments slice."""


def includeme(config):
    pass
