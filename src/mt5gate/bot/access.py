"""Who may use the bot: the allow-list of users and chats, and the one refusal a stranger gets.

A user's role is the higher of their own entry (``[[bot.users]]``) and the chat's entry
(``[[bot.chats]]``, for a group whose members all may read, say). Anyone with neither is a
stranger: they get one polite refusal, which tells them their user id (so an operator can add
them), and after that silence; the attempt is logged with the ids only, never the text. A group
that is not listed gets one refusal for the whole chat, not one per member.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from mt5gate.bot.settings import BotMember, BotSettings, Role

__all__ = ["AccessList", "Refusals"]


@dataclass(frozen=True, slots=True)
class AccessList:
    """Roles by Telegram user id and chat id."""

    users: dict[int, Role]
    chats: dict[int, Role]

    @classmethod
    def of(cls, settings: BotSettings) -> AccessList:
        """The allow-list of ``settings``."""
        return cls(_roles(settings.users), _roles(settings.chats))

    @property
    def empty(self) -> bool:
        """Whether nobody at all may use the bot."""
        return not self.users and not self.chats

    def role(self, user_id: int | None, chat_id: int | None, private: bool = True) -> Role | None:
        """The role of ``user_id`` writing in ``chat_id``, or ``None`` for a stranger. Outside
        a private chat the chat itself must be listed: the bot answers only in allowed chats
        (an admin's /account in some other group would post the balance there)."""
        if not private and chat_id not in self.chats:
            return None
        found = [
            role
            for role in (self.users.get(user_id or 0), self.chats.get(chat_id or 0))
            if role is not None
        ]
        return max(found, key=lambda role: role.rank, default=None)


def _roles(members: tuple[BotMember, ...]) -> dict[int, Role]:
    return {member.id: member.role for member in members}


@dataclass(slots=True)
class Refusals:
    """Remembers which strangers were already refused, so each is refused once.

    Bounded (the oldest are forgotten past ``capacity``), so a flood of strangers cannot grow
    memory; a forgotten stranger would just be refused once more.
    """

    capacity: int = 10_000
    _seen: OrderedDict[int, None] = field(default_factory=OrderedDict)

    def first_time(self, user_id: int) -> bool:
        """True the first time ``user_id`` (a user, or a group's chat id) is refused."""
        if user_id in self._seen:
            self._seen.move_to_end(user_id)
            return False
        self._seen[user_id] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return True
