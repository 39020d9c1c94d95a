-- Tenants (business units): who created each, and the Rego modules a tenant adds on top of the
-- installation's policy set. Never edit an applied migration: add a new file instead.

-- NULL for the installation tenant `default`, which the server creates itself.
ALTER TABLE tenants ADD COLUMN created_by TEXT;

-- A tenant's own policy modules, evaluated with the built-in pack (and the installation's policy
-- directory) for that tenant's changes only. `digest` is the SHA-256 of `source`: a server reads
-- the (name, digest) pairs to know whether its cached policy set is still the tenant's.
CREATE TABLE tenant_policy_modules (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    digest TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
