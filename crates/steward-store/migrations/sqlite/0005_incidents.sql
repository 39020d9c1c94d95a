-- Incidents (issue #7): the incident document beside the columns queries filter on; the signal
-- keys that de-duplicate resends; the suspect changes, for `change show` and the change failure
-- rate; detector rules and pre-approved containment playbooks.
CREATE TABLE incidents (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    number BIGINT NOT NULL,
    state TEXT NOT NULL,
    severity TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (tenant_id, number)
);
CREATE INDEX incidents_by_state ON incidents (tenant_id, state, opened_at);

CREATE TABLE incident_signals (
    tenant_id TEXT NOT NULL,
    source TEXT NOT NULL,
    signal_key TEXT NOT NULL,
    number BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, source, signal_key),
    FOREIGN KEY (tenant_id, number) REFERENCES incidents (tenant_id, number)
);

CREATE TABLE incident_links (
    tenant_id TEXT NOT NULL,
    number BIGINT NOT NULL,
    change_number BIGINT NOT NULL,
    score REAL NOT NULL,
    strong BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, number, change_number),
    FOREIGN KEY (tenant_id, number) REFERENCES incidents (tenant_id, number)
);
CREATE INDEX incident_links_by_change ON incident_links (tenant_id, change_number);

CREATE TABLE detector_rules (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE playbooks (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE problems (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
