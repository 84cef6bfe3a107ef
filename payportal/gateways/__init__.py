"""gateways slice: signed inbound webhooks from payment gateways, and the test checkout page."""


def includeme(config):
    from payportal.gateways.resources import WebhookCollection
    from payportal.gateways.services import apply_parked_webhooks
    from payportal.payments.state import on_transition

    config.add_resource_child("api", "webhooks", WebhookCollection)
    config.add_route("checkout", "/checkout/{reference}")
    # early webhooks wait (parked) until a transition makes them applicable
    on_transition(apply_parked_webhooks)
