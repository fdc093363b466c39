"""Chaos test of exactly-once orders: a broker process, gateway processes killed, paused and
doubled at random, journals lost and restored, and a checker comparing every journal, the
client's memory and the broker's ledger (issue 5, item 7; issue 15)."""
