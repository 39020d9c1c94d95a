-- Dual control (issue #15): a privileged operation (granting an approving or privileged role,
-- changing the catalog, a tenant's policy modules, group-to-role mappings) waits here until a
-- second admin approves it; approving applies it in the same transaction. `operation` is the
-- JSON of what the approver binds (for a role grant: the roles before and after), never a secret
-- (a new account's token is kept only as its hash). A decided row is kept for the record.
CREATE TABLE pending_operations (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    number BIGINT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    operation TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    status TEXT NOT NULL,
    decided_by TEXT,
    decided_at TEXT,
    reason TEXT,
    PRIMARY KEY (tenant_id, number)
);
CREATE INDEX pending_operations_by_status ON pending_operations (tenant_id, status, number);
