"""Trade server answers: retcode comment texts and the rejection signal of the check pipeline.

Texts come from ``tests/data/surface.json`` ``retcode_comments`` (observed and unverified); the
codes that file does not list use short forms of the MQL5 return-code descriptions.
"""

from __future__ import annotations

from mt5gate.constants import TradeRetcode

__all__ = ["CHECK_DONE", "RejectError", "comment_for"]

#: order_check success text (retcode 0).
CHECK_DONE = "Done"

_COMMENTS: dict[int, str] = {
    10004: "Requote",
    10006: "Request rejected",
    10007: "Request canceled by trader",
    10008: "Order placed",
    10009: "Request executed",
    10010: "Request executed partially",
    10011: "Request processing error",
    10012: "Request canceled by timeout",
    10013: "Invalid request",
    10014: "Invalid volume",
    10015: "Invalid price",
    10016: "Invalid stops",
    10017: "Trade disabled",
    10018: "Market closed",
    10019: "No money",
    10020: "Prices changed",
    10021: "No prices",
    10022: "Invalid expiration",
    10024: "Too frequent requests",
    10025: "No changes",
    10026: "AutoTrading disabled by server",
    10027: "AutoTrading disabled by client",
    10029: "Order or position frozen",
    10030: "Unsupported filling mode",
    10031: "No connection",
    10033: "Limit orders",
    10034: "Limit volume",
    10035: "Invalid order",
    10036: "Position closed",
    10038: "Invalid close volume",
    10040: "Limit positions",
    10042: "Long only",
    10043: "Short only",
    10044: "Close only",
    10045: "FIFO close",
}


def comment_for(retcode: int) -> str:
    """The terminal's comment text for ``retcode`` (a generic text for unknown codes)."""
    return _COMMENTS.get(int(retcode), f"Retcode {int(retcode)}")


class RejectError(Exception):
    """A request refused with a trade retcode; raised by a check, answered by the broker."""

    def __init__(self, retcode: TradeRetcode) -> None:
        super().__init__(int(retcode), comment_for(retcode))
        self.retcode = int(retcode)
        self.comment = comment_for(retcode)
