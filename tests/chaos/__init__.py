"""Chaos test of exactly-once orders: a broker process, gateway processes killed at random,
and a checker comparing the order journal with the broker's ledger (issue 5, item 7)."""
