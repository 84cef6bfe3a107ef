"""merchants slice: accounts, operators, tokens, API keys, audit log and the security policy."""


def includeme(config):
    # imported here: models and policy import this package, and resources import them back
    from payportal.merchants.resources import ApiKeyCollection, AuthResource

    config.add_resource_child("api", "auth", AuthResource)
    config.add_resource_child("api", "api-keys", ApiKeyCollection)
