"""events slice: the outbox, publishing to SQS, merchants' webhook endpoints and deliveries."""

from payportal.events.publisher import (
    PerProcess,
    Publisher,
    check_sqs,
    preload_sqs_client,
    sqs_client,
)
from payportal.events.resources import EventCollection, WebhookEndpointCollection
from payportal.events.services import PUBLISHER_KEY


def includeme(config):
    config.add_resource_child("api", "events", EventCollection)
    config.add_resource_child("api", "webhook-endpoints", WebhookEndpointCollection)
    registry = config.registry
    settings = registry.payportal_settings
    if not settings.sqs_queue_url:
        return
    # one attempt, so /readyz answers within the client's short timeouts; made in the process
    # that asks (a forked worker never shares its parent's connections)
    registry.sqs_readiness_client = PerProcess(lambda: sqs_client(settings, max_attempts=1))
    registry.readiness_checks.append(("sqs", check_sqs))
    if settings.publisher_enabled:
        # sessions from this factory hand appended events to the publisher after commit; its
        # thread starts in the process that first hands it events (each forked worker)
        publisher = Publisher(registry.dbsession_factory, settings)
        preload_sqs_client(settings)
        registry.event_publisher = publisher
        registry.dbsession_factory.configure(info={PUBLISHER_KEY: publisher})
        # a graceful stop (payportal.server) sends what is queued before the process exits
        hooks = getattr(registry, "shutdown_hooks", None)
        if hooks is None:
            hooks = registry.shutdown_hooks = []
        hooks.append(publisher.shutdown)
