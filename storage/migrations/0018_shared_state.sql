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
