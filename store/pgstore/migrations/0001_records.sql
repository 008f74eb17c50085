-- Crash records: one row per (host, digest), fleet-wide. The row is the
-- record: its bytes, its metadata (store.RecordMeta as JSON) and what the
-- listing shows of it. path is the record's name in the store's layout,
-- <host dir>/crash/<name>.<digest16>, unique like a file name.
CREATE TABLE records (
    host        text        NOT NULL,
    digest      text        NOT NULL,
    path        text        NOT NULL,
    name        text        NOT NULL,
    size        bigint      NOT NULL,
    data        bytea       NOT NULL,
    meta        jsonb       NOT NULL,
    panic_line  text        NOT NULL DEFAULT '',
    verified    boolean     NOT NULL DEFAULT false,
    linked_boot text        NOT NULL DEFAULT '',
    record_time timestamptz NOT NULL,
    received    timestamptz NOT NULL,
    collector   text        NOT NULL DEFAULT '',
    PRIMARY KEY (host, digest),
    CONSTRAINT records_path_key UNIQUE (path)
);
CREATE INDEX records_host_time ON records (host, record_time DESC);
CREATE INDEX records_received ON records (received);
