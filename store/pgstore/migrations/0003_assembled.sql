-- Multi-part crashes: pstore splits one crash's dmesg into Part1..PartN
-- (ramoops records, EFI variables), each uploaded as a record, possibly
-- to different collectors. The parts' crash, found in their metadata, is
-- a column so that the collector storing the last part finds the others;
-- the text put back together (store.Records' <crash id>.dmesg.txt) is one
-- row of assembled per crash, fleet-wide.
ALTER TABLE records ADD COLUMN crash_id text NOT NULL DEFAULT '';
ALTER TABLE records ADD COLUMN part integer NOT NULL DEFAULT 0;
ALTER TABLE records ADD COLUMN parts integer NOT NULL DEFAULT 0;
UPDATE records SET crash_id = meta->>'crash_id',
    part = coalesce((meta->>'part')::integer, 0),
    parts = coalesce((meta->>'parts')::integer, 0)
    WHERE coalesce(meta->>'crash_id', '') <> '';
CREATE INDEX records_crash ON records (host, crash_id) WHERE crash_id <> '';
CREATE TABLE assembled (
    host      text        NOT NULL,
    crash_id  text        NOT NULL,
    path      text        NOT NULL, -- <host dir>/crash/<crash id>.dmesg.txt
    parts     integer     NOT NULL,
    size      bigint      NOT NULL,
    data      bytea       NOT NULL,
    truncated boolean     NOT NULL DEFAULT false,
    received  timestamptz NOT NULL, -- when its last part was received
    collector text        NOT NULL DEFAULT '',
    PRIMARY KEY (host, crash_id),
    CONSTRAINT assembled_path_key UNIQUE (path)
);
CREATE INDEX assembled_received ON assembled (received);
