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

CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Append-only: the application never updates or deletes audit rows. (Someone with write
-- access to the file can drop these triggers; the hash chain is what detects that.)
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
