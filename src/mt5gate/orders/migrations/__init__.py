"""Schema migrations of the server-database stores, as package data (``postgres/NNNN_*.sql``)."""
