-- The model inventory (issue #6): one document per model (fields with provenance, versions as
-- discovered), its status and update time as columns. Every save is an audit event holding the
-- whole record, which is what point-in-time questions read. Templates: one document per tenant.
CREATE TABLE models (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE inventory_templates (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
