"""The dashboard's web plumbing: sessions, CSRF, security headers, template helpers."""


def includeme(config):
    pass
