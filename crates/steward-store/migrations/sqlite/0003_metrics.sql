-- Metric samples pushed to Steward (issue #5, verification; issue #7, detectors). Telemetry, not
-- governance records: samples are not audit events. One row per series and time; a resent
-- sample replaces the value it repeats.
CREATE TABLE metric_samples (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    labels TEXT NOT NULL,
    at TEXT NOT NULL,
    value REAL NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name, labels, at)
);
