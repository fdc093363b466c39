"""What the bot remembers across restarts: per chat, whether it wants alerts and which account
it works with. A small JSON file, written whole to a temporary file and renamed over the old
one, so a crash leaves the old state or the new one, never half of either."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ChatState", "BotState"]

log = logging.getLogger("mt5gate.bot")


@dataclass(slots=True)
class ChatState:
    """One chat's choices."""

    alerts: bool = False
    account: str | None = None


@dataclass(slots=True)
class BotState:
    """Every chat's choices, kept in ``path``."""

    path: Path
    chats: dict[int, ChatState] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> BotState:
        """The state in ``path`` (empty when there is none; an unreadable file is logged and
        set aside as ``<name>.bad``, never fatal: it holds preferences, not orders)."""
        state = cls(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            state.chats = {int(k): _chat(v) for k, v in raw["chats"].items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            log.warning("bot state %s is unreadable; starting afresh (kept as %s.bad)",
                        path, path.name)  # fmt: skip
            os.replace(path, path.with_name(path.name + ".bad"))
        return state

    def chat(self, chat_id: int) -> ChatState:
        """The state of ``chat_id`` (defaults for a chat never seen)."""
        return self.chats.get(chat_id, ChatState())

    def subscribers(self) -> list[int]:
        """Chats that want alerts."""
        return [chat_id for chat_id, chat in self.chats.items() if chat.alerts]

    def update(
        self, chat_id: int, *, alerts: bool | None = None, account: str | None = None
    ) -> None:
        """Change a chat's choices and save."""
        chat = self.chats.setdefault(chat_id, ChatState())
        if alerts is not None:
            chat.alerts = alerts
        if account is not None:
            chat.account = account
        self.save()

    def save(self) -> None:
        """Write the whole state atomically."""
        data: dict[str, Any] = {
            "chats": {str(k): {"alerts": v.alerts, "account": v.account}
                      for k, v in self.chats.items()}
        }  # fmt: skip
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(temporary, self.path)


def _chat(value: Any) -> ChatState:
    account, alerts = value.get("account"), value["alerts"]
    if account is not None and not isinstance(account, str):
        raise TypeError("account must be a string")
    if not isinstance(alerts, bool):
        raise TypeError("alerts must be true or false")
    return ChatState(alerts, account)
