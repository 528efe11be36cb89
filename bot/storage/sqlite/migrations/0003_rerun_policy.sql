-- Who may rerun a finished video: 'anyone' in the guild (default), or only its 'requester'
-- (moderators always may).
ALTER TABLE guilds ADD COLUMN reruns_by TEXT NOT NULL DEFAULT 'anyone'
    CHECK (reruns_by IN ('anyone', 'requester'));
