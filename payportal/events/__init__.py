"""events slice."""


def includeme(config):
    pass
