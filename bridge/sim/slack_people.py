"""People in the Slack stand-in: users by id and by email, and the DMs the app opens with them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from .slack_errors import SlackError

Args = dict[str, Any]


def dm_channel_for(user_id: str) -> str:
    """The DM channel id ``conversations.open`` gives for a user (stable, like Slack's)."""
    return "D" + hashlib.sha1(user_id.encode()).hexdigest()[:10].upper()


class SlackPeople:
    def __init__(self, team_id: str) -> None:
        self._team_id = team_id
        self._users: dict[str, Args] = {}  # user id → user object, as users.info returns it

    def methods(self) -> dict[str, Callable[[Args], Args]]:
        return {
            "users.lookupByEmail": self._users_lookup_by_email,
            "users.info": self._users_info,
            "conversations.open": self._conversations_open,
        }

    def add(self, user_id: str, email: str, *, name: str = "someone") -> Args:
        user = {
            "id": user_id,
            "team_id": self._team_id,
            "name": name,
            "real_name": name.title(),
            "deleted": False,
            "is_bot": False,
            "profile": {"email": email, "real_name": name.title(), "display_name": name},
        }
        self._users[user_id] = user
        return user

    def _user(self, user_id: Any) -> Args:
        user = self._users.get(str(user_id or ""))
        if user is None:
            raise SlackError("user_not_found")
        return user

    def _users_lookup_by_email(self, args: Args) -> Args:
        email = str(args.get("email") or "").strip().lower()
        if not email:
            raise SlackError("invalid_email")
        user = next((u for u in self._users.values() if u["profile"]["email"].lower() == email), None)
        if user is None:
            raise SlackError("users_not_found")
        return {"ok": True, "user": user}

    def _users_info(self, args: Args) -> Args:
        return {"ok": True, "user": self._user(args.get("user"))}

    def _conversations_open(self, args: Args) -> Args:
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if not users:
            raise SlackError("users_list_not_supplied")
        if len(users) > 1:
            raise SlackError("not_enough_users" if len(users) > 8 else "method_not_supported_for_channel_type")
        return {"ok": True, "channel": {"id": dm_channel_for(self._user(users[0])["id"])}}
