"""The fencing rule a terminal host applies to every call: the highest epoch wins.

The owner of an account calls ``terminal.fence(epoch)`` after taking the account's lease
(:class:`~mt5gate.terminal.base.Fenceable`); every later call carries that epoch to the host
that runs the terminal (the bridge server, the child process of a ProcessTerminal). The host
keeps the highest epoch it has been shown in an :class:`EpochFence` and, before it lets a call
reach the terminal:

* refuses a call carrying a *lower* epoch, whatever the function: the caller is a paused or
  partitioned ex-owner, and its reads feed decisions (reconciliation, resends) it no longer
  has the right to make, so it learns at its very next call;
* once it has seen any epoch, refuses the functions of :data:`UNFENCED_REFUSED` when they carry
  *no* epoch: a legacy or unfenced client must not trade (``order_send``) or move the terminal
  to another account (``login``) behind the owner's back. Reads, ``initialize`` and
  ``order_check`` (which executes nothing) without an epoch stay allowed, so monitoring, the
  CLI and the bot keep reading;
* records a *higher* epoch as the new highest and lets the call through.

The check and the call must be one step on the host's single terminal thread (the bridge's
worker job, the child's request loop): a check made anywhere else could pass, then let a newer
owner's call raise the highest and execute, and still run the stale call after it.

A *refusal*, though, never goes stale: the highest epoch only grows, so a call refused now would
be refused in that step too. A host whose calls wait for the terminal (the bridge's gate, busy
with another client's call or stuck in a hung one) asks :meth:`EpochFence.check` first, from
the thread that received the call, so an ex-owner is refused at once instead of waiting (and
instead of a "busy" or "timeout" that would not tell it it lost the account).
"""

from __future__ import annotations

from typing import Final

from mt5gate.terminal.base import TerminalFencedError

__all__ = ["UNFENCED_REFUSED", "EpochFence", "checked_epoch"]

#: Functions refused without an epoch once the host has seen one.
UNFENCED_REFUSED: Final = frozenset({"order_send", "login"})


def checked_epoch(epoch: object) -> int:
    """``epoch`` if it is a positive int (not a bool); ``fence()`` refuses anything else."""
    if isinstance(epoch, bool) or not isinstance(epoch, int):
        raise TypeError(f"a fencing epoch is a positive int, got {type(epoch).__name__}")
    if epoch < 1:
        raise ValueError(f"a fencing epoch is a positive int, got {epoch}")
    return epoch


class EpochFence:
    """The highest epoch one terminal host has seen; :meth:`admit` applies the rule.

    :meth:`admit` is not thread-safe by design: only the host's one terminal thread uses it, in
    the same step as the call it admits; :meth:`check` may run on any thread (see the module
    docstring).
    """

    def __init__(self, highest: int | None = None) -> None:
        self.highest = highest

    def __repr__(self) -> str:
        return f"<EpochFence highest={self.highest}>"

    def check(self, function: str, epoch: int | None) -> None:
        """Raise TerminalFencedError if the rule refuses ``function`` carrying ``epoch`` now.

        Changes nothing, so any thread may call it (it reads one int): the highest epoch only
        grows, so what it refuses :meth:`admit` would refuse too. What it lets pass is judged
        again by :meth:`admit` when the call's turn comes (a newer epoch may come first).
        """
        highest = self.highest
        if highest is None:
            return
        if epoch is None:
            if function in UNFENCED_REFUSED:
                raise TerminalFencedError(function, None, highest)
        elif epoch < highest:
            raise TerminalFencedError(function, epoch, highest)

    def admit(self, function: str, epoch: int | None) -> bool:
        """Let ``function`` carrying ``epoch`` through (:meth:`check`), or raise
        TerminalFencedError.

        True when ``epoch`` raised the highest (the host logs the new owner's arrival).
        """
        self.check(function, epoch)
        if epoch is None:
            return False
        highest, self.highest = self.highest, epoch
        return highest is None or epoch > highest
