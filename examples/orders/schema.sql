-- Schema of the orders example's sink. Plain SQL with unqualified names: run it with search_path set to the
-- deployment's schema (the sink and orders-api use PG_SCHEMA). Idempotent (IF NOT EXISTS). The sink's Hibernate
-- only validates this schema; it never creates or alters anything.

-- One row per applied order. order_id is deliberately NOT unique: an order applied twice is two rows.
CREATE TABLE IF NOT EXISTS orders (
    id            bigserial   PRIMARY KEY,
    order_id      text        NOT NULL,
    customer      text        NOT NULL,
    total_cents   bigint      NOT NULL,
    src_partition int         NOT NULL,  -- partition of TOPIC_PRICED the record came from
    src_offset    bigint      NOT NULL,  -- its offset there
    message_id    text        NOT NULL,  -- OrderPriced.message_id (fresh per produced record)
    applied_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS orders_order_id_idx ON orders (order_id);

-- Running balance per customer; version is the JPA @Version column (optimistic locking).
CREATE TABLE IF NOT EXISTS customer_balance (
    customer      text   PRIMARY KEY,
    balance_cents bigint NOT NULL DEFAULT 0,
    order_count   bigint NOT NULL DEFAULT 0,
    version       bigint NOT NULL DEFAULT 0
);

-- Dedup of applied orders: message_key = order_id.
CREATE TABLE IF NOT EXISTS inbox (
    message_key text        PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now()
);
