-- What inventory scans find besides models (issue #6): datasets, training runs and deployments,
-- one document each keyed within its kind, with the source that found it and when it was last
-- seen; and each scan's report (sources, counts, problems, reconciliation findings), kept.
CREATE TABLE inventory_records (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    found_by TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind, key)
);

CREATE TABLE inventory_scans (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX inventory_scans_started ON inventory_scans (tenant_id, started_at);
