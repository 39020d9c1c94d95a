-- Notifications (issue #5): what Steward told a person — a rollback to a change's owners, for
-- now. Written in the same transaction as the change event they report, read from each person's
-- inbox (`GET /api/v1/notifications`).
CREATE TABLE notifications (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    change_number BIGINT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX notifications_by_recipient ON notifications (tenant_id, recipient, created_at);
