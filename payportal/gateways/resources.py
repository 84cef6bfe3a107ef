"""Traversal contexts of /api/v1/webhooks: the public gateway endpoints and the simulator."""

from __future__ import annotations

from payportal.resources import MerchantCollection, Resource


class WebhookCollection(Resource):
    """/webhooks: every name is a view (payment, stripe, ...) except `simulate` when enabled."""

    path_template = "/webhooks"

    def __getitem__(self, name: str):
        # with simulation off there is no such resource, so the path is a plain 404
        if name == "simulate" and self.request.app_settings.allow_simulation:
            return SimulationResource(self, name)
        raise KeyError(name)


class SimulationResource(MerchantCollection):
    """/webhooks/simulate: scoped to the requesting merchant, whose own payments it may move."""

    path_template = "/webhooks/simulate"
