-- mt5gate order journal, PostgreSQL schema version 1.
-- Runs inside the store's schema (search_path), in the migration transaction, under the
-- migration advisory lock. Mirrors the SQLite journal (schema 3): events and blocks are
-- append-only, requests and results are canonical JSON text (compared byte for byte for
-- idempotency keys; json/jsonb would reformat them), times are ms since the Unix epoch.

CREATE TABLE sequences (
    login BIGINT PRIMARY KEY,
    last BIGINT NOT NULL
);

CREATE TABLE events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    utc_ms BIGINT NOT NULL,
    monotonic_ns BIGINT NOT NULL,
    login BIGINT NOT NULL,
    client_id BIGINT NOT NULL,
    idempotency_key TEXT,
    request TEXT,
    result TEXT,
    retcode INTEGER,
    note TEXT NOT NULL DEFAULT '',
    order_ticket BIGINT,
    deal_ticket BIGINT
);
CREATE INDEX events_order ON events (login, client_id, seq);
CREATE INDEX events_login_seq ON events (login, seq);
CREATE UNIQUE INDEX events_key ON events (login, idempotency_key)
    WHERE kind = 'INTENT' AND idempotency_key IS NOT NULL;
CREATE INDEX events_order_ticket ON events (order_ticket) WHERE order_ticket IS NOT NULL;
CREATE INDEX events_deal_ticket ON events (deal_ticket) WHERE deal_ticket IS NOT NULL;

CREATE TABLE leases (
    login BIGINT PRIMARY KEY,
    owner TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    expires_utc_ms BIGINT NOT NULL,
    acquired_utc_ms BIGINT NOT NULL,
    info TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE blocks (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    login BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('BLOCK', 'ACKNOWLEDGE')),
    utc_ms BIGINT NOT NULL,
    reason TEXT NOT NULL,
    sequences TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX blocks_login ON blocks (login, seq);

CREATE TABLE members (
    id TEXT PRIMARY KEY,
    info TEXT NOT NULL DEFAULT '{}',
    expires_utc_ms BIGINT NOT NULL,
    draining BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE placements (
    login BIGINT PRIMARY KEY,
    member TEXT NOT NULL
);

CREATE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the order journal is append-only (% on %)', TG_OP, TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();
CREATE TRIGGER blocks_append_only BEFORE UPDATE OR DELETE ON blocks
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER blocks_no_truncate BEFORE TRUNCATE ON blocks
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();
