-- Governance rules (issue #4): each change's effective window, kept as columns so conflict and
-- calendar queries can filter on it, and the maintenance windows and freezes of each tenant.
ALTER TABLE changes ADD COLUMN window_start TEXT;
ALTER TABLE changes ADD COLUMN window_end TEXT;
CREATE INDEX changes_by_window ON changes (tenant_id, window_start);

CREATE TABLE calendar_windows (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
