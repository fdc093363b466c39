"""The fleet: several ``mt5gate serve`` replicas sharing accounts over one store (and a bus)."""
