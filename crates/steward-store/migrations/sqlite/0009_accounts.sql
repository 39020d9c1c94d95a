-- Accounts with a lifecycle (issue #15): an account is active or disabled, and remembers when it
-- was disabled and when one of its tokens was last used (written at most once a minute, so a
-- request is not a write). A token may expire, and a revoked or rotated token keeps its row for
-- the record (`revoked_at`, and why: `rotated` or `revoked`) but never authenticates again.
ALTER TABLE users ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
    CHECK (status IN ('active', 'disabled'));
ALTER TABLE users ADD COLUMN disabled_at TEXT;
ALTER TABLE users ADD COLUMN last_used_at TEXT;
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
ALTER TABLE api_tokens ADD COLUMN revoked_at TEXT;
ALTER TABLE api_tokens ADD COLUMN revoked_reason TEXT
    CHECK (revoked_reason IN ('rotated', 'revoked'));
CREATE INDEX api_tokens_by_user ON api_tokens (tenant_id, user_name);
