-- The owner's room: the Events API stream (source events_api) and the Stats API (stats_api).
-- "account" is the owner's username, as the URL names it (lower case): an install serves one
-- account today, and the key is there for when it serves several.

-- Every event of the stream, once: the raw object as received plus typed columns. Event ids
-- are "<milliseconds>-<sequence>" (FORMATS.md §6.1) and occurred_at is read from the
-- milliseconds, so (account, event_id) alone is unique; the partition key has to be in the
-- primary key as well. Partitioned by month (storage/maintenance.py drops whole months past
-- events.retention_days). No foreign keys: persons are joined by username when read, and
-- inserting a burst checks nothing per row.
CREATE TABLE room_events (
    account      text NOT NULL,
    event_id     text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    method       text NOT NULL,
    username     text,          -- the user the event is about (lower case), when there is one
    broadcaster  text,
    tokens       integer,       -- a tip's tokens, a media purchase's price
    is_anon      boolean,       -- an anonymous tip
    in_fanclub   boolean,
    has_tokens   boolean,
    is_mod       boolean,
    recent_tips  text,
    gender       text,
    subgender    text,
    message      text,          -- chat or private message text, a tip's note (NULL when not kept)
    subject      text,          -- roomSubjectChange
    media_id     bigint,
    media_type   text,
    media_name   text,
    from_user    text,          -- privateMessage
    to_user      text,
    raw          jsonb NOT NULL, -- the event as received (message texts removed when not kept)
    received_at  timestamptz NOT NULL DEFAULT now(),
    job_id       bigint,
    PRIMARY KEY (account, event_id, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX room_events_time ON room_events (account, occurred_at DESC);
CREATE INDEX room_events_method ON room_events (account, method, occurred_at DESC);
CREATE INDEX room_events_user ON room_events (account, username, occurred_at DESC)
    WHERE username IS NOT NULL;

-- Where each account's stream stands: the id of the last event stored, written in the same
-- transaction as the events, so a restart (or a crash, or a database outage) resumes right
-- after the last stored event, neither losing nor repeating one. The URL's token is never
-- stored: the next request is built from the configured URL and this id.
CREATE TABLE room_event_streams (
    account        text PRIMARY KEY,
    last_event_id  text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Every Stats API answer (refreshed by the site every 5 minutes; -1 is stored as NULL).
-- A few hundred rows a day: not partitioned, kept.
CREATE TABLE room_stats (
    account                 text NOT NULL,
    observed_at             timestamptz NOT NULL,
    num_followers           integer,
    num_viewers             integer,
    num_registered_viewers  integer,
    num_tokened_viewers     integer,
    token_balance           integer,
    tips_in_last_hour       integer,
    votes_up                integer,
    votes_down              integer,
    satisfaction_score      integer,
    last_broadcast          timestamptz,
    time_online             integer,   -- minutes
    raw                     jsonb NOT NULL,
    job_id                  bigint,
    PRIMARY KEY (account, observed_at)
);
