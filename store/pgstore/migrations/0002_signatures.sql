-- The signature index (store/sigindex.Index): signatures, the crashes of
-- each host, and the sightings (copies) of each crash.
CREATE TABLE signatures (
    id          text        PRIMARY KEY,
    sig         jsonb       NOT NULL, -- crash/signature.Signature, title_usec -1
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    crash_count integer     NOT NULL DEFAULT 0,
    sample      jsonb       NOT NULL, -- sigindex.Sighting, with its report
    sample_source text      NOT NULL
);
CREATE TABLE crashes (
    seq          bigserial   PRIMARY KEY,
    id           text        NOT NULL,
    signature_id text        NOT NULL REFERENCES signatures (id),
    host         text        NOT NULL,
    boot         text        NOT NULL DEFAULT '',
    release      text        NOT NULL DEFAULT '',
    time         timestamptz NOT NULL,
    title_usec   bigint      NOT NULL
);
CREATE INDEX crashes_host_sig ON crashes (host, signature_id);
CREATE INDEX crashes_sig ON crashes (signature_id);
CREATE TABLE sightings (
    source    text   NOT NULL,
    ref       text   NOT NULL,
    seq       bigserial NOT NULL,
    crash_seq bigint NOT NULL REFERENCES crashes (seq),
    data      jsonb  NOT NULL, -- sigindex.Sighting without its report
    PRIMARY KEY (source, ref)
);
CREATE INDEX sightings_crash ON sightings (crash_seq, seq);
