-- Which front end a job belongs to: 'discord' (a channel) or 'terminal' (`pikabot generate`,
-- whose video goes to a file). The Discord bot never resumes a terminal job into a channel.
ALTER TABLE jobs ADD COLUMN origin_kind TEXT NOT NULL DEFAULT 'discord'
    CHECK (origin_kind IN ('discord', 'terminal'));
-- Terminal jobs written before this column were the ones with no guild and no channel.
UPDATE jobs SET origin_kind = 'terminal' WHERE guild_id = 0 AND channel_id = 0;
