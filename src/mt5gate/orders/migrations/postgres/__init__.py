"""PostgreSQL schema migrations, applied in order by :mod:`mt5gate.orders.postgres`."""
