-- The last record of each subject's sub-chain (`docs/evidence-bundle.md`): the writer links
-- the next lifecycle record of a grant, partner or credential to it (`details.subject_prev`)
-- and moves it, in the transaction that seals the record.
CREATE TABLE audit_subject_head (
    subject TEXT PRIMARY KEY,
    seq     BIGINT NOT NULL,
    hash    TEXT NOT NULL
);
