-- Foundation schema (SQLite). Never edit an applied migration: add a new file instead.
-- Times are UTC RFC 3339 text with microseconds (fixed width, so text order is time order).

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);

CREATE TABLE users (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    roles TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at TEXT NOT NULL,
    FOREIGN KEY (tenant_id, user_name) REFERENCES users (tenant_id, name)
);

CREATE TABLE targets (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    environment TEXT NOT NULL,
    criticality TEXT NOT NULL,
    regulated TEXT NOT NULL,
    parent TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name),
    FOREIGN KEY (tenant_id, owner) REFERENCES users (tenant_id, name),
    FOREIGN KEY (tenant_id, parent) REFERENCES targets (tenant_id, name)
);

CREATE TABLE catalog_items (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE counters (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE changes (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    number INTEGER NOT NULL,
    state TEXT NOT NULL,
    change_type TEXT NOT NULL,
    requester TEXT NOT NULL,
    category TEXT NOT NULL,
    environment TEXT NOT NULL,
    risk_score INTEGER NOT NULL,
    approval_deadline TEXT,
    outcome TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (tenant_id, number)
);
CREATE INDEX changes_by_state ON changes (tenant_id, state);
CREATE INDEX changes_by_requester ON changes (tenant_id, requester);

-- Outcomes of finished changes per target and category: the failure history that risk scoring
-- reads on every submission, kept as running counts so that read costs the same at any size.
CREATE TABLE target_outcomes (
    tenant_id TEXT NOT NULL,
    target TEXT NOT NULL,
    category TEXT NOT NULL,
    finished INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, target, category)
);

CREATE TABLE change_targets (
    tenant_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    target TEXT NOT NULL,
    PRIMARY KEY (tenant_id, number, target),
    FOREIGN KEY (tenant_id, number) REFERENCES changes (tenant_id, number)
);
CREATE INDEX change_targets_by_target ON change_targets (tenant_id, target);

-- One row per approval slot filled; the unique keys are a second guard (after the change's
-- version check) that one person never fills two slots and no slot is filled twice.
CREATE TABLE change_decisions (
    tenant_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    slot TEXT NOT NULL,
    approver TEXT NOT NULL,
    decision TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, number, slot),
    UNIQUE (tenant_id, number, approver),
    FOREIGN KEY (tenant_id, number) REFERENCES changes (tenant_id, number)
);

-- The audit log. `seq` is the gapless leaf index of the installation's one log, handed out by
-- the single audit_head row, which every appending transaction locks last.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    next_seq INTEGER NOT NULL,
    -- The Merkle tree's frontier at next_seq leaves: hex roots of its perfect subtrees, largest
    -- first, comma-separated. Kept here so an append needs no extra read.
    frontier TEXT NOT NULL
);
INSERT INTO audit_head (id, next_seq, frontier) VALUES (1, 0, '');

CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    correlation_id TEXT,
    -- The leaf's input bytes (steward-audit-entry/v1 + canonical JSON); its hash is leaf `seq`.
    entry TEXT NOT NULL
);

-- What an event carries beyond the facts in its leaf (before/after, comments): personal data and
-- free text, kept outside the tree so it can be erased without breaking proofs. The leaf holds
-- its SHA-256.
CREATE TABLE audit_payloads (
    seq INTEGER PRIMARY KEY REFERENCES audit_events (seq),
    -- The data subject the payload is about (`tenant:user`); its key decrypts it.
    subject TEXT NOT NULL,
    nonce TEXT NOT NULL,
    -- base64 AES-256-GCM of the details JSON, bound to `seq`.
    ciphertext TEXT NOT NULL
);
CREATE INDEX audit_payloads_by_subject ON audit_payloads (subject);

-- One key per data subject. Erasure destroys the key (key = NULL); a legal hold blocks that.
CREATE TABLE audit_subject_keys (
    subject TEXT PRIMARY KEY,
    key TEXT,
    legal_hold TEXT,
    erased_at TEXT,
    created_at TEXT NOT NULL
);

-- Every perfect subtree root of the log's Merkle tree: (0, i) is leaf i's hash.
CREATE TABLE audit_nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (level, idx)
);

-- Signed checkpoints (C2SP tlog-checkpoint in a signed note), one per tree size signed.
CREATE TABLE audit_checkpoints (
    size INTEGER PRIMARY KEY,
    root TEXT NOT NULL,
    note TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX audit_events_by_subject ON audit_events (tenant_id, subject_type, subject_id, seq);

CREATE TRIGGER audit_events_refuse_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_refuse_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_nodes_refuse_update BEFORE UPDATE ON audit_nodes
BEGIN
    SELECT RAISE(ABORT, 'audit_nodes is append-only');
END;
CREATE TRIGGER audit_nodes_refuse_delete BEFORE DELETE ON audit_nodes
BEGIN
    SELECT RAISE(ABORT, 'audit_nodes is append-only');
END;
CREATE TRIGGER audit_checkpoints_refuse_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;
CREATE TRIGGER audit_checkpoints_refuse_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;
