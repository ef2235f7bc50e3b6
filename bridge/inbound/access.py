"""Who may steer runs from Slack: ``slack.allowed_users`` and ``slack.allowed_channels``.

An empty list means everyone; both lists must let a request through. A run's
DM with its creator is the creator's own place, not a channel: there only
``allowed_users`` applies (whether a thread is such a DM is read from the
bridge's placement, never from the request).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

REFUSAL = (
    "Sorry, you can't steer Oz runs from Slack here: this bridge only takes follow-ups, "
    "cancellations and file requests from the people and channels its operators allowed."
)
START_REFUSAL = (
    "Sorry, you can't start Oz runs from Slack here: this bridge only starts runs for the people "
    "and channels its operators allowed."
)


@dataclass(frozen=True)
class AccessPolicy:
    users: frozenset[str]
    channels: frozenset[str]

    @classmethod
    def of(cls, users: Iterable[str], channels: Iterable[str]) -> AccessPolicy:
        return cls(frozenset(users), frozenset(channels))

    def allows(self, user: str | None, channel: str | None, *, in_dm: bool = False) -> bool:
        """``in_dm``: the place is a run's DM with its creator (the channel list does not apply)."""
        user_ok = not self.users or (user is not None and user in self.users)
        channel_ok = in_dm or not self.channels or (channel is not None and channel in self.channels)
        return user_ok and channel_ok
