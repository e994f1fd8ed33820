-- What a crawl on any machine needs, kept in PostgreSQL instead of data_dir files: the login
-- sessions' encrypted storage states, thumbnails (with images.store = "database"), and the
-- CBHours pace. (The one-browser-per-account rule is an advisory lock: no table.)

-- The encrypted storage state of a login session (sessions/crypto.py's format, the same Fernet
-- key), read only by sessions/store.py when a session is loaded. file_name now names only a
-- file written before this migration whose content has not been carried in yet: the agent and
-- the CLI move it into `state` when they migrate (sessions.store.carry_session_files), then
-- remove the file, then clear file_name. A row holds one or the other, or both for the moment
-- between the carry and the removal.
ALTER TABLE login_sessions ADD COLUMN state bytea;
ALTER TABLE login_sessions ALTER COLUMN file_name DROP NOT NULL;
ALTER TABLE login_sessions ADD CONSTRAINT login_sessions_state_or_file
    CHECK (state IS NOT NULL OR file_name IS NOT NULL);

-- Thumbnail bytes when images.store = "database", one row per content (the SHA-256 the files
-- are named by, images.content_hash), so the same picture is stored once however many persons
-- or polls bring it. Rows of `images` whose content is not here are files in data_dir/images.
CREATE TABLE image_contents (
    content_hash text PRIMARY KEY CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    content      bytea NOT NULL
);

-- Request paces shared by every crawl process on every machine (storage/pace.py): the
-- earliest time, by the database's clock, the next request to that API may leave.
CREATE TABLE request_paces (
    name     text PRIMARY KEY,
    next_at  timestamptz NOT NULL
);
INSERT INTO request_paces (name, next_at) VALUES ('cbhours', '-infinity');

-- Takes the pace's slot if it is due: then the next one is an interval from now, and 0 is
-- returned; else nothing changes and the seconds left are returned (the caller waits, then
-- asks again). The clock is read once the row is locked, so a taker that waited for the lock
-- counts from when it got it. A slot more than an hour ahead cannot come from a pace (a
-- hold-off is capped far below): it is taken as due.
CREATE FUNCTION roomwatch_take_slot(pace text, seconds float8) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
    due timestamptz;
    at  timestamptz;
BEGIN
    SELECT next_at INTO due FROM request_paces WHERE name = pace FOR UPDATE;
    at := clock_timestamp();
    IF NOT FOUND THEN
        INSERT INTO request_paces (name, next_at)
        VALUES (pace, at + make_interval(secs => seconds))
        ON CONFLICT (name) DO NOTHING;
        RETURN CASE WHEN FOUND THEN 0 ELSE seconds END;
    END IF;
    IF due <= at OR due > at + interval '1 hour' THEN
        UPDATE request_paces SET next_at = at + make_interval(secs => seconds) WHERE name = pace;
        RETURN 0;
    END IF;
    RETURN extract(epoch FROM due - at);
END
$$;
