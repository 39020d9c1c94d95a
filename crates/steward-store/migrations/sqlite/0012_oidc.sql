-- Single sign-on with OpenID Connect (issue #15). Never edit an applied migration: add a new file.

-- Where an account comes from: `local` (made by an admin, holds API tokens) or `oidc` (made and
-- kept up to date by sign-ins through the identity provider; no API token). An `oidc` account is
-- bound to the provider identity that made it (`issuer#subject`), so a provider user whose
-- preferred name later reads the same cannot take it over.
ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local'
    CHECK (source IN ('local', 'oidc'));
ALTER TABLE users ADD COLUMN oidc_identity TEXT;
-- One account per identity in a tenant: a sign-in finds its account by identity first, whatever
-- name the provider gives today, so a renamed person keeps their account (and its status).
CREATE UNIQUE INDEX users_by_oidc_identity ON users (tenant_id, oidc_identity)
    WHERE oidc_identity IS NOT NULL;

-- A sign-in under way: the browser was sent to the provider with `state` (kept hashed), and comes
-- back with it once. Read and deleted in one statement, so a replayed state finds nothing, on
-- any server sharing the database. `browser_hash` binds it to the browser that started it.
CREATE TABLE oidc_logins (
    state_hash TEXT PRIMARY KEY,
    browser_hash TEXT NOT NULL,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    tenant_id TEXT,
    return_to TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX oidc_logins_by_expiry ON oidc_logins (expires_at);

-- Portal sessions after a sign-in, by the SHA-256 of the cookie's value. They end with the ID
-- token (at most 12 hours); the account's roles and status are read afresh on every request.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    FOREIGN KEY (tenant_id, user_name) REFERENCES users (tenant_id, name)
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE INDEX sessions_by_user ON sessions (tenant_id, user_name);

-- Per tenant, what a provider group means: the roles its members hold there. A group is mapped in
-- one tenant at most (group names are the provider's, shared by every tenant), so one tenant
-- cannot hand roles to another tenant's people by mapping their group.
CREATE TABLE group_roles (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    group_name TEXT NOT NULL,
    roles TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, group_name)
);
CREATE UNIQUE INDEX group_roles_by_group ON group_roles (group_name);
