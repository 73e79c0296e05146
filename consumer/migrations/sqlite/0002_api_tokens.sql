-- Read-only API tokens (`consumer token create|list|revoke`). Only the SHA-256 of a token's
-- secret is kept. A revoked token keeps its row (revoked_at set), so importing the old
-- api-tokens.json again can never bring it back. Times in unix milliseconds.

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
) WITHOUT ROWID;
