"""Per-credential token buckets (per process): 429 with Retry-After and X-RateLimit-* headers.

Limits are per web process; with N processes behind a balancer a credential gets up to N times
the configured rate. That is documented, and keeps the hot path free of a shared store.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from payportal.errors import RateLimited

# operations with their own, lower limit (per merchant)
INITIALIZE_PATH = "/payments/initialize"
_MAX_BUCKETS = 100_000


@dataclass
class Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """rate tokens per second, up to burst; thread-safe."""

    def __init__(self, rate: float, burst: int):
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> tuple[bool, int, float]:
        """-> (allowed, tokens left, seconds until one more token)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= _MAX_BUCKETS:
                    self._buckets.clear()  # bounded memory: forgetting only ever lets more in
                bucket = self._buckets[key] = Bucket(float(self.burst), now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return True, int(bucket.tokens), 0.0
            return False, 0, (1 - bucket.tokens) / self.rate


class RateLimiter:
    def __init__(self, settings):
        self.enabled = settings.rate_limit_per_second > 0
        self.general = TokenBuckets(settings.rate_limit_per_second, settings.rate_limit_burst)
        self.initialize = TokenBuckets(
            settings.rate_limit_initialize_per_second, settings.rate_limit_initialize_burst
        )

    def check(self, request, path: str) -> None:
        """Spend a token for this request's credential, or raise RateLimited."""
        identity = request.identity
        if not self.enabled or identity is None:
            return
        if path == INITIALIZE_PATH:
            buckets, key = self.initialize, f"merchant:{identity.merchant_id}"
        else:
            buckets, key = self.general, f"{identity.kind}:{identity.credential_id}"
        allowed, remaining, wait = buckets.take(key)
        headers = {
            "X-RateLimit-Limit": str(buckets.burst),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(math.ceil(wait)),
        }
        if not allowed:
            raise RateLimited(
                "too many requests for these credentials; slow down",
                retry_after=math.ceil(wait),
                headers=headers,
            )
        request.rate_limit_headers = headers


def includeme(config):
    config.registry.rate_limiter = RateLimiter(config.registry.payportal_settings)
