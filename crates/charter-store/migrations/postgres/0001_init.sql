-- Objects are stored as JSON documents with the few columns the store looks them up by.
CREATE TABLE objects (
    id      TEXT PRIMARY KEY,
    kind    TEXT NOT NULL,
    name    TEXT,
    lookup  TEXT,
    parent  TEXT,
    status  TEXT,
    body    TEXT NOT NULL,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX objects_kind_name ON objects (kind, name);
CREATE UNIQUE INDEX objects_kind_lookup ON objects (kind, lookup);
CREATE INDEX objects_kind_parent ON objects (kind, parent, id);
CREATE INDEX objects_kind_status ON objects (kind, status, id);

-- The hash-chained audit log: `body` is the record's canonical encoding, `hash` its SHA-256.
CREATE TABLE audit_log (
    seq    BIGINT PRIMARY KEY,
    at     TEXT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    body   TEXT NOT NULL,
    hash   TEXT NOT NULL
);
CREATE INDEX audit_log_target ON audit_log (target, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);

-- One row: the chain head. Writers lock it (SELECT … FOR UPDATE) so that several
-- control-plane nodes append to one chain.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Append-only: the application never updates or deletes audit rows. (A superuser can
-- disable this trigger; the hash chain is what detects that.)
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
