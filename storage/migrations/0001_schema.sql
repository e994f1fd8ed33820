-- roomwatch schema: identity and follow state, one history table per source, jobs, sessions,
-- schedules. History tables are range-partitioned by time (daily or monthly) so retention drops
-- whole partitions instead of deleting rows; see docs/architecture.md.

-- Settings the SQL side needs (the "recent" window of the merge view). The agent writes them
-- from its config at start-up.
CREATE TABLE roomwatch_settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO roomwatch_settings (key, value) VALUES ('recent_interval', '10 minutes');

-- Creates the partitions of `parent` that cover [first, last]; `granularity` is 'day' or 'month'.
-- Partitions are named <parent>_pYYYYMMDD / <parent>_pYYYYMM and bounded in UTC.
CREATE FUNCTION roomwatch_ensure_partitions(
    parent regclass, granularity text, first timestamptz, last timestamptz
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    step interval := CASE granularity WHEN 'day' THEN interval '1 day' ELSE interval '1 month' END;
    fmt text := CASE granularity WHEN 'day' THEN 'YYYYMMDD' ELSE 'YYYYMM' END;
    lower_bound timestamp := date_trunc(granularity, first AT TIME ZONE 'UTC');
    part text;
BEGIN
    IF granularity NOT IN ('day', 'month') THEN
        RAISE EXCEPTION 'granularity must be day or month, not %', granularity;
    END IF;
    WHILE lower_bound <= last AT TIME ZONE 'UTC' LOOP
        part := format('%s_p%s', parent::text, to_char(lower_bound, fmt));
        IF to_regclass(part) IS NULL THEN
            -- Two writers may race to create the same partition; serialise them on its name.
            PERFORM pg_advisory_xact_lock(hashtext(part));
            EXECUTE format(
                'CREATE TABLE IF NOT EXISTS %I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                part, parent, lower_bound AT TIME ZONE 'UTC', (lower_bound + step) AT TIME ZONE 'UTC');
        END IF;
        lower_bound := lower_bound + step;
    END LOOP;
END $$;

-- Drops the partitions of `parent` that hold only rows older than `before`; returns their names.
CREATE FUNCTION roomwatch_drop_partitions_before(parent regclass, before timestamptz)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    part record;
    upper_bound timestamptz;
BEGIN
    FOR part IN
        SELECT c.oid::regclass::text AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent
    LOOP
        upper_bound := substring(part.bound FROM 'TO \(''([^'']+)''\)')::timestamptz;
        IF upper_bound <= before THEN
            EXECUTE format('DROP TABLE %s', part.name);
            RETURN NEXT part.name;
        END IF;
    END LOOP;
END $$;

CREATE TABLE images (
    image_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id    bigint NOT NULL,
    source_url   text NOT NULL,
    local_path   text NOT NULL,
    content_hash text NOT NULL,
    content_type text,
    bytes        integer,
    fetched_at   timestamptz NOT NULL,
    UNIQUE (person_id, content_hash)
);

CREATE TABLE persons (
    person_id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Chaturbate usernames are case-insensitive; we store them lower-cased, so UNIQUE is too.
    username                   text NOT NULL UNIQUE
                               CHECK (username = lower(username) AND username <> ''),
    first_seen_at              timestamptz NOT NULL DEFAULT now(),
    last_seen_online_at        timestamptz,
    following                  boolean,
    follower                   boolean,
    following_checked_at       timestamptz,
    follower_checked_at        timestamptz,
    has_cbhours_trophy         boolean,
    cbhours_trophy_checked_at  timestamptz,
    watch                      boolean NOT NULL DEFAULT false,
    latest_image_id            bigint REFERENCES images (image_id) ON DELETE SET NULL
);
ALTER TABLE images ADD FOREIGN KEY (person_id) REFERENCES persons (person_id) ON DELETE CASCADE;
CREATE INDEX images_person ON images (person_id, fetched_at DESC);

CREATE TABLE crawl_jobs (
    job_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    spider         text NOT NULL,
    args           jsonb NOT NULL DEFAULT '{}',
    trigger        text NOT NULL CHECK (trigger IN ('schedule', 'api', 'cli')),
    status         text NOT NULL DEFAULT 'queued' CHECK (status IN
                   ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
    queued_at      timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    pid            integer,
    items          jsonb NOT NULL DEFAULT '{}',
    requests       integer NOT NULL DEFAULT 0,
    retries        integer NOT NULL DEFAULT 0,
    errors         integer NOT NULL DEFAULT 0,
    stats          jsonb NOT NULL DEFAULT '{}',
    finish_reason  text,
    error_message  text,
    log_path       text
);
-- At most one queued-or-running job per spider, enforced where no race can slip past it.
CREATE UNIQUE INDEX crawl_jobs_one_active ON crawl_jobs (spider)
    WHERE status IN ('queued', 'running');
CREATE INDEX crawl_jobs_spider_recent ON crawl_jobs (spider, job_id DESC);

-- A poll that provably saw the whole list (every page read). Only such polls may conclude that
-- someone absent is offline, unfollowed, and so on.
CREATE TABLE source_polls (
    source        text NOT NULL,
    completed_at  timestamptz NOT NULL,
    job_id        bigint REFERENCES crawl_jobs (job_id) ON DELETE SET NULL,
    rows_seen     integer NOT NULL,
    PRIMARY KEY (source, completed_at)
);

-- Affiliate feed: one row per room per poll, every field of the room object plus the raw object.
CREATE TABLE affiliate_api_snapshots (
    person_id               bigint NOT NULL,
    observed_at             timestamptz NOT NULL,
    job_id                  bigint,
    gender                  text NOT NULL,
    location                text,
    current_show            text NOT NULL,
    room_subject            text,
    tags                    text[] NOT NULL,
    is_new                  boolean NOT NULL,
    num_users               integer NOT NULL,
    num_followers           integer NOT NULL,
    country                 text,
    spoken_languages        text,
    display_name            text,
    birthday                date,
    is_hd                   boolean,
    age                     smallint,
    seconds_online          integer,
    image_url               text,
    image_url_360x270       text,
    chat_room_url_revshare  text,
    iframe_embed_revshare   text,
    chat_room_url           text,
    iframe_embed            text,
    slug                    text,
    raw                     jsonb NOT NULL,
    PRIMARY KEY (person_id, observed_at)
) PARTITION BY RANGE (observed_at);

-- Hourly rollup of the affiliate snapshots, kept long after the raw rows are dropped.
CREATE TABLE affiliate_hourly (
    person_id        bigint NOT NULL,
    hour             timestamptz NOT NULL,
    samples          integer NOT NULL,
    viewers_sum      bigint NOT NULL,
    viewers_max      integer NOT NULL,
    followers_min    integer NOT NULL,
    followers_max    integer NOT NULL,
    followers_last   integer NOT NULL,
    last_observed_at timestamptz NOT NULL,
    PRIMARY KEY (person_id, hour)
) PARTITION BY RANGE (hour);

CREATE TABLE cbhours_live_stats (
    person_id     bigint NOT NULL,
    observed_at   timestamptz NOT NULL,
    job_id        bigint,
    room_status   text NOT NULL,
    gender        text,
    rank          integer,
    grank         integer,
    viewers       integer,
    followers     integer,
    current_show  text,
    room_subject  text,
    tags          text[],
    is_new        boolean,
    raw           jsonb NOT NULL,
    PRIMARY KEY (person_id, observed_at)
) PARTITION BY RANGE (observed_at);

-- CBHours 3-minute activity segments (timestamps converted to UTC), unique per person and time.
CREATE TABLE cbhours_activity (
    person_id    bigint NOT NULL,
    segment_at   timestamptz NOT NULL,
    type         text NOT NULL,
    rank         integer,
    grank        integer,
    followers    integer,
    viewers      integer,
    gender       text,
    observed_at  timestamptz NOT NULL,
    job_id       bigint,
    PRIMARY KEY (person_id, segment_at)
) PARTITION BY RANGE (segment_at);

CREATE TABLE cbhours_daily_activity (
    person_id       bigint NOT NULL REFERENCES persons (person_id) ON DELETE CASCADE,
    day             date NOT NULL,
    online_minutes  integer NOT NULL CHECK (online_minutes >= 0),
    tzo             integer NOT NULL,
    observed_at     timestamptz NOT NULL,
    job_id          bigint,
    PRIMARY KEY (person_id, day)
);

-- Cached profile fields, one row per person and source (the newest that source told us).
CREATE TABLE profiles (
    person_id         bigint NOT NULL REFERENCES persons (person_id) ON DELETE CASCADE,
    source            text NOT NULL,
    observed_at       timestamptz NOT NULL,
    display_name      text,
    age               smallint,
    birthday          date,
    gender            text,
    location          text,
    country           text,
    spoken_languages  text,
    extra             jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (person_id, source)
);

CREATE TABLE follow_events (
    event_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id    bigint NOT NULL REFERENCES persons (person_id) ON DELETE CASCADE,
    kind         text NOT NULL
                 CHECK (kind IN ('followed', 'unfollowed', 'new_follower', 'lost_follower')),
    occurred_at  timestamptz NOT NULL,
    source       text NOT NULL,
    job_id       bigint REFERENCES crawl_jobs (job_id) ON DELETE SET NULL
);
CREATE INDEX follow_events_time ON follow_events (occurred_at DESC);
CREATE INDEX follow_events_person ON follow_events (person_id, occurred_at DESC);

-- Metadata only: the cookies live encrypted in the data dir, never in the database.
CREATE TABLE login_sessions (
    session_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account           text NOT NULL,
    method            text NOT NULL CHECK (method IN ('interactive', 'form', 'import')),
    captured_at       timestamptz NOT NULL DEFAULT now(),
    last_verified_at  timestamptz,
    status            text NOT NULL DEFAULT 'unknown' CHECK (status IN ('valid', 'expired', 'unknown')),
    file_name         text NOT NULL UNIQUE
);

CREATE TABLE schedules (
    name              text PRIMARY KEY,
    spider            text NOT NULL,
    args              jsonb NOT NULL DEFAULT '{}',
    interval_seconds  integer CHECK (interval_seconds > 0),
    cron              text,
    paused            boolean NOT NULL DEFAULT false,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((interval_seconds IS NULL) <> (cron IS NULL))
);
