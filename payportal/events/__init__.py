"""events slice: the outbox, publishing to SQS, merchants' webhook endpoints and deliveries."""

from payportal.events.publisher import Publisher, check_sqs, sqs_client
from payportal.events.resources import EventCollection, WebhookEndpointCollection
from payportal.events.services import PUBLISHER_KEY


def includeme(config):
    config.add_resource_child("api", "events", EventCollection)
    config.add_resource_child("api", "webhook-endpoints", WebhookEndpointCollection)
    registry = config.registry
    settings = registry.payportal_settings
    if not settings.sqs_queue_url:
        return
    # one attempt, so /readyz answers within the client's short timeouts
    registry.sqs_readiness_client = sqs_client(settings, max_attempts=1)
    registry.readiness_checks.append(("sqs", check_sqs))
    if settings.publisher_enabled:
        # sessions from this factory hand appended events to the publisher after commit
        publisher = Publisher(registry.dbsession_factory, settings)
        registry.event_publisher = publisher
        registry.dbsession_factory.configure(info={PUBLISHER_KEY: publisher})
        # a graceful stop (payportal.server) sends what is queued before the process exits
        hooks = getattr(registry, "shutdown_hooks", None)
        if hooks is None:
            hooks = registry.shutdown_hooks = []
        hooks.append(publisher.shutdown)
