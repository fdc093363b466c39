"""The fleet chaos test: replicas, PostgreSQL and NATS under kills, pauses and restarts."""
