"""The one retry schedule used for outbound deliveries and inbound Slack work alike."""

from __future__ import annotations


def backoff_delay(
    attempt: int, *, first: float, cap: float, max_retry_after: float, retry_after: float | None, jitter: float
) -> float:
    """Seconds before retry number ``attempt`` (1 for the first retry).

    The other side's ``Retry-After`` wins when it is within reason; otherwise the
    delay doubles from ``first`` up to ``cap``, ±20 % (``jitter`` in [0, 1)) so
    that many failing requests don't retry in lockstep.
    """
    if retry_after is not None and 0 <= retry_after <= max_retry_after:
        return retry_after
    base: float = first * 2.0 ** min(attempt - 1, 32)
    return min(cap, base * (0.8 + 0.4 * jitter))
