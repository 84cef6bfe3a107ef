"""admin slice."""


def includeme(config):
    pass
