-- Pika's tools (bot/tools.py): the tool that made a job (NULL: text- or image-to-video, or
-- Scenes). Its inputs are part of the request JSON; the column lets use be counted per tool.
ALTER TABLE jobs ADD COLUMN tool TEXT;
CREATE INDEX jobs_guild_tool ON jobs (guild_id, tool, created_at) WHERE tool IS NOT NULL;

-- Pikaffects the moderators turned off on their server (Decapitate is not for every one).
CREATE TABLE guild_disabled_effects (
    guild_id INTEGER NOT NULL,
    effect   TEXT    NOT NULL,
    PRIMARY KEY (guild_id, effect)
);
