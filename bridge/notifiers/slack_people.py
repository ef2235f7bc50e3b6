"""Run creators in Slack: their email → a Slack user (cached, shared) → a DM channel, or a mention.

A creator Slack does not know (``users_not_found``) is remembered as such for a
while, logged and counted once per look-up, and the run is skipped there: never
a retry loop. Other Slack errors go back to the caller, to be classified. The
same cache names the creator in a reminder (``run.still_blocked``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.events import JSONDict
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.notifiers.slack_errors import error_code
from bridge.store import slack_users

log = get_logger("bridge.notifiers.slack_people")
KNOWN_TTL = timedelta(hours=24)  # people rarely change their email
UNKNOWN_TTL = timedelta(hours=1)  # someone may join Slack: look again now and then, not per event
_NOT_FOUND = frozenset({"users_not_found", "user_not_found"})


def creator_email(run: JSONDict) -> str | None:
    creator = run.get("creator")
    email = creator.get("email") if isinstance(creator, dict) else None
    return email.strip() if isinstance(email, str) and "@" in email and len(email) <= 320 else None


def is_fresh(known: slack_users.KnownUser, now: datetime) -> bool:
    ttl = KNOWN_TTL if known.user_id else UNKNOWN_TTL
    return now - known.checked_at < ttl


class CreatorDirectory:
    def __init__(self, client: AsyncWebClient, engine: AsyncEngine, metrics: Metrics) -> None:
        self._client = client
        self._engine = engine
        self._metrics = metrics

    async def dm_channel(self, run: JSONDict) -> str | None:
        """The DM channel with the run's creator; ``None`` when the creator has no Slack account."""
        email = creator_email(run)
        if email is None:
            log.info("run not told by DM: its creator has no email", run_id=run.get("run_id"))
            return None
        user_id = await self.user_id(email, str(run.get("run_id")), "not told by DM")
        if user_id is None:
            return None
        response = await self._client.conversations_open(users=user_id)
        channel = response.get("channel") or {}
        return str(channel["id"]) if isinstance(channel, dict) and channel.get("id") else None

    async def creator_user(self, run: JSONDict) -> str | None:
        """The run's creator's Slack user id, when their email names one (to mention them)."""
        email = creator_email(run)
        if email is None:
            return None
        return await self.user_id(email, str(run.get("run_id")), "not mentioned")

    async def user_id(self, email: str, run_id: str, consequence: str) -> str | None:
        now = datetime.now(UTC)
        known = await self._read(email)
        if known is not None and is_fresh(known, now):
            return known.user_id
        found = await self._look_up(email)
        if found is None:
            self._metrics.slack_unknown_creators.inc()
            # The address is personal data: say which run, not whose address.
            log.warning(f"run creator has no Slack account; {consequence}", run_id=run_id)
        await self._remember(email, found, now)
        return found

    async def _look_up(self, email: str) -> str | None:
        try:
            response = await self._client.users_lookupByEmail(email=email)
        except SlackApiError as exc:
            if error_code(exc) in _NOT_FOUND:
                return None
            raise
        user = response.get("user") or {}
        return str(user["id"]) if isinstance(user, dict) and user.get("id") else None

    async def _read(self, email: str) -> slack_users.KnownUser | None:
        async with self._engine.connect() as conn:
            return await slack_users.lookup(conn, email)

    async def _remember(self, email: str, user_id: str | None, now: datetime) -> None:
        async with self._engine.begin() as conn:
            await slack_users.remember(conn, email, user_id, now)
