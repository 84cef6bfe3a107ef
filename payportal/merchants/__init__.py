"""merchants slice."""


def includeme(config):
    pass
