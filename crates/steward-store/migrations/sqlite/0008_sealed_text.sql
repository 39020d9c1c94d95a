-- Erasure that erases (issue #14): the free text people write is sealed in the documents under
-- their payload key, and payload keys are wrapped by a key-encryption key (KEK) kept outside the
-- database. This table holds a value wrapped by the KEK the database was first opened with, so a
-- server given another KEK refuses to start. Wrapping the existing keys and sealing the existing
-- documents needs the KEK, so it runs from Rust in this migration's transaction
-- (`legacy::seal_existing`).
CREATE TABLE payload_kek_check (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    check_value TEXT NOT NULL,
    created_at TEXT NOT NULL
);
