-- roomwatch schema baseline: identity and follow state, one history table per source, jobs,
-- sessions, schedules, the latest values per person and source, their merge, and the person
-- list's materialised rows. History tables are range-partitioned by time (daily or monthly) so
-- retention drops whole partitions instead of deleting rows; see docs/architecture.md.
--
-- This file folds the migrations 0001-0009 of before (docs/decisions/0005-migration-baseline.md);
-- databases that applied those are adopted by storage/migrator.py. Like every applied
-- migration, it is never edited again.

-- Settings the SQL side needs (the "recent" window of the merge view). The agent writes them
-- from its config at start-up.
CREATE TABLE roomwatch_settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO roomwatch_settings (key, value) VALUES ('recent_interval', '10 minutes');

-- The start of the "recent" window: observations at or after it are recent. The one spelling of
-- the window: the merge view, the summaries' valid_until and the API's reads all call it.
CREATE FUNCTION roomwatch_recent_since() RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT now() - COALESCE((SELECT value FROM roomwatch_settings WHERE key = 'recent_interval'),
                            '10 minutes')::interval
$$;

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
-- Rows rewritten on every poll (last seen online, latest values) leave room in each page so
-- PostgreSQL can update them in place (HOT) instead of touching every index.
) WITH (fillfactor = 80);
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
    log_path       text,
    -- Cancellation requests and progress heartbeats from the crawl process.
    cancel_requested_at timestamptz,
    heartbeat_at        timestamptz
);
-- At most one queued-or-running job per spider, enforced where no race can slip past it.
CREATE UNIQUE INDEX crawl_jobs_one_active ON crawl_jobs (spider)
    WHERE status IN ('queued', 'running');
CREATE INDEX crawl_jobs_spider_recent ON crawl_jobs (spider, job_id DESC);
CREATE INDEX crawl_jobs_active ON crawl_jobs (status) WHERE status IN ('queued', 'running');
-- GET /crawls?status=...: newest first within a status.
CREATE INDEX crawl_jobs_status_recent ON crawl_jobs (status, job_id DESC);

-- Every queued job wakes the workers of every agent on this database (LISTEN roomwatch_jobs);
-- they also poll, so a lost notification only delays a job by a second.
CREATE FUNCTION roomwatch_notify_job_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('roomwatch_jobs', NEW.job_id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER crawl_jobs_queued AFTER INSERT ON crawl_jobs
    FOR EACH ROW EXECUTE FUNCTION roomwatch_notify_job_queued();

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
    -- Written by the agent that holds the scheduler lock: when each schedule fires next (NULL
    -- while paused or while no agent schedules) and when it last fired, so that a restarted
    -- agent resumes the rhythm instead of starting every interval from scratch.
    next_run_at       timestamptz,
    last_fired_at     timestamptz,
    last_job_id       bigint REFERENCES crawl_jobs (job_id) ON DELETE SET NULL,
    CHECK ((interval_seconds IS NULL) <> (cron IS NULL))
);

-- One row per alert already sent to the webhook: the key names the alert and its occurrence
-- (for example the first failed job of a streak), so a restart or a second agent sends nothing
-- twice.
CREATE TABLE alert_notifications (
    alert_key    text PRIMARY KEY,
    notified_at  timestamptz NOT NULL DEFAULT now()
);

-- The cheap "latest per person per source" path and the merge view over it.
--
-- person_source_latest holds, per person and source, the newest value of each field group that
-- source has reported, with the time it was observed. Writers maintain it in the same
-- transaction as the history rows, so reads never scan history.

CREATE TABLE person_source_latest (
    person_id         bigint NOT NULL REFERENCES persons (person_id) ON DELETE CASCADE,
    -- Which sources may write is checked by person_source_latest_source_check, generated from
    -- storage/merge_rules.py below.
    source            text NOT NULL,
    -- profile group
    display_name      text,
    age               smallint,
    birthday          date,
    gender            text,
    location          text,
    country           text,
    spoken_languages  text,
    profile_at        timestamptz,
    -- live group
    online            boolean,
    current_show      text,
    viewers           integer,
    subject           text,
    live_at           timestamptz,
    -- follower count
    followers         integer,
    followers_at      timestamptz,
    -- tags
    tags              text[],
    tags_at           timestamptz,
    -- rank (CBHours only)
    rank              integer,
    grank             integer,
    rank_at           timestamptz,
    -- upstream image URL (they expire; the local copy is persons.latest_image_id)
    image_url         text,
    image_at          timestamptz,
    PRIMARY KEY (person_id, source)
) WITH (fillfactor = 70);
-- "Which persons does any source tag with X": a necessary condition for the merged tags,
-- used by list queries to avoid merging every person.
CREATE INDEX person_source_latest_tags ON person_source_latest USING gin (tags);

-- The merged current state, generated from storage/merge_rules.py (INTERFACE.md "Sources and
-- priority"): every merged field comes with <field|group>_source and <field|group>_observed_at,
-- the groups ruled by the "recent" window with <group>_stale. Every join is on the primary key
-- of person_source_latest.
--
-- person_summary: the person list's row of every person, materialised.
--
-- Listing "persons tagged X by followers" through v_person_current_state merges every person
-- carrying the tag on each request (about 30 ms for a common tag among 100,000 persons). This
-- table holds, per person, exactly the list's columns of the view, so the list is an index range
-- scan. Triggers keep it in the writer's transaction: any change to persons or
-- person_source_latest recomputes the persons it touched, from the view itself (one set of
-- rules). The merge also moves with time alone (a source stops being "recent"), so every row
-- says until when it is valid: valid_until is the first moment a group's winner (live,
-- followers, tags, image) leaves the recent window while another source has a newer
-- observation of that group, which then takes over. live_stale is not stored: readers compare
-- live_newest_at with the window. A row past valid_until is "due": list queries merge due
-- persons through the view instead (the answer never depends on when maintenance ran), and the
-- scheduling agent recomputes due rows every few seconds (roomwatch_refresh_due_summaries) so
-- there are few of them.
--
-- Every change also notifies channel roomwatch_persons (once per transaction), so a reader that
-- caches merged persons knows when to forget them.

CREATE TABLE person_summary (
    person_id            bigint PRIMARY KEY REFERENCES persons (person_id) ON DELETE CASCADE,
    username             text NOT NULL,
    display_name         text,
    gender               text,
    age                  smallint,
    country              text,
    online               boolean,
    current_show         text,
    viewers              integer,
    followers            integer,
    tags                 text[],
    rank                 integer,
    grank                integer,
    following            boolean,
    follower             boolean,
    watch                boolean NOT NULL,
    last_seen_online_at  timestamptz,
    image_id             bigint,
    image_url            text,
    -- The newest live observation of any source: live_stale is computed from it when read.
    live_newest_at       timestamptz,
    valid_until          timestamptz NOT NULL
) WITH (fillfactor = 70);

CREATE INDEX person_summary_tags ON person_summary USING gin (tags);
CREATE INDEX person_summary_followers ON person_summary (followers DESC NULLS LAST, person_id);
CREATE INDEX person_summary_viewers ON person_summary (viewers DESC NULLS LAST, person_id);
CREATE INDEX person_summary_rank ON person_summary (rank ASC NULLS LAST, person_id);
CREATE INDEX person_summary_grank ON person_summary (grank ASC NULLS LAST, person_id);
-- No index for the last-seen sort: every poll moves last_seen_online_at of every person online,
-- and an index on it made each of those updates touch every index of the table (not HOT): 0.3 s
-- more per 10,000-room poll, for a sort that a top-N scan of this table serves instead (about
-- 40 ms for 100,000 persons).
CREATE INDEX person_summary_valid_until ON person_summary (valid_until);

-- BEGIN GENERATED by storage/merge_rules.py: do not edit, regenerate
ALTER TABLE person_source_latest
    DROP CONSTRAINT IF EXISTS person_source_latest_source_check,
    ADD CONSTRAINT person_source_latest_source_check
    CHECK (source IN ('affiliate', 'cbhours', 'followed_cams', 'followers', 'html_import',
                     'profile_cache'));

DROP VIEW IF EXISTS v_person_summary;
DROP VIEW IF EXISTS v_person_current_state;

-- The merged current state. The window's start k.at is fenced with OFFSET 0: pulled up,
-- it would be computed once per reference (37 InitPlans per person merged), not once
-- per query.
CREATE VIEW v_person_current_state AS
SELECT
    p."person_id",
    p."username",
    p."first_seen_at",
    p."last_seen_online_at",
    p."following",
    p."follower",
    p."following_checked_at",
    p."follower_checked_at",
    p."has_cbhours_trophy",
    p."cbhours_trophy_checked_at",
    p."watch",
    p."latest_image_id" AS "image_id",
    CASE m."display_name_source"
         WHEN 'affiliate' THEN "affiliate"."display_name"
         WHEN 'cbhours' THEN "cbhours"."display_name"
         WHEN 'profile_cache' THEN "profile_cache"."display_name"
         WHEN 'followed_cams' THEN "followed_cams"."display_name"
         WHEN 'followers' THEN "followers"."display_name"
         WHEN 'html_import' THEN "html_import"."display_name" END AS "display_name",
    m."display_name_source",
    CASE m."display_name_source"
         WHEN 'affiliate' THEN "affiliate"."profile_at"
         WHEN 'cbhours' THEN "cbhours"."profile_at"
         WHEN 'profile_cache' THEN "profile_cache"."profile_at"
         WHEN 'followed_cams' THEN "followed_cams"."profile_at"
         WHEN 'followers' THEN "followers"."profile_at"
         WHEN 'html_import' THEN "html_import"."profile_at" END AS "display_name_observed_at",
    CASE m."age_source"
         WHEN 'affiliate' THEN "affiliate"."age"
         WHEN 'cbhours' THEN "cbhours"."age"
         WHEN 'profile_cache' THEN "profile_cache"."age"
         WHEN 'followed_cams' THEN "followed_cams"."age"
         WHEN 'followers' THEN "followers"."age"
         WHEN 'html_import' THEN "html_import"."age" END AS "age",
    m."age_source",
    CASE m."age_source"
         WHEN 'affiliate' THEN "affiliate"."profile_at"
         WHEN 'cbhours' THEN "cbhours"."profile_at"
         WHEN 'profile_cache' THEN "profile_cache"."profile_at"
         WHEN 'followed_cams' THEN "followed_cams"."profile_at"
         WHEN 'followers' THEN "followers"."profile_at"
         WHEN 'html_import' THEN "html_import"."profile_at" END AS "age_observed_at",
    CASE m."birthday_source"
         WHEN 'affiliate' THEN "affiliate"."birthday"
         WHEN 'cbhours' THEN "cbhours"."birthday"
         WHEN 'profile_cache' THEN "profile_cache"."birthday"
         WHEN 'followed_cams' THEN "followed_cams"."birthday"
         WHEN 'followers' THEN "followers"."birthday"
         WHEN 'html_import' THEN "html_import"."birthday" END AS "birthday",
    m."birthday_source",
    CASE m."birthday_source"
         WHEN 'affiliate' THEN "affiliate"."profile_at"
         WHEN 'cbhours' THEN "cbhours"."profile_at"
         WHEN 'profile_cache' THEN "profile_cache"."profile_at"
         WHEN 'followed_cams' THEN "followed_cams"."profile_at"
         WHEN 'followers' THEN "followers"."profile_at"
         WHEN 'html_import' THEN "html_import"."profile_at" END AS "birthday_observed_at",
    CASE m."gender_source"
         WHEN 'affiliate' THEN "affiliate"."gender"
         WHEN 'cbhours' THEN "cbhours"."gender"
         WHEN 'profile_cache' THEN "profile_cache"."gender"
         WHEN 'followed_cams' THEN "followed_cams"."gender"
         WHEN 'followers' THEN "followers"."gender"
         WHEN 'html_import' THEN "html_import"."gender" END AS "gender",
    m."gender_source",
    CASE m."gender_source"
         WHEN 'affiliate' THEN "affiliate"."profile_at"
         WHEN 'cbhours' THEN "cbhours"."profile_at"
         WHEN 'profile_cache' THEN "profile_cache"."profile_at"
         WHEN 'followed_cams' THEN "followed_cams"."profile_at"
         WHEN 'followers' THEN "followers"."profile_at"
         WHEN 'html_import' THEN "html_import"."profile_at" END AS "gender_observed_at",
    CASE m."location_source"
         WHEN 'affiliate' THEN "affiliate"."location"
         WHEN 'cbhours' THEN "cbhours"."location"
         WHEN 'profile_cache' THEN "profile_cache"."location"
         WHEN 'followed_cams' THEN "followed_cams"."location"
         WHEN 'followers' THEN "followers"."location"
         WHEN 'html_import' THEN "html_import"."location" END AS "location",
    m."location_source",
    CASE m."location_source"
         WHEN 'affiliate' THEN "affiliate"."profile_at"
         WHEN 'cbhours' THEN "cbhours"."profile_at"
         WHEN 'profile_cache' THEN "profile_cache"."profile_at"
         WHEN 'followed_cams' THEN "followed_cams"."profile_at"
         WHEN 'followers' THEN "followers"."profile_at"
         WHEN 'html_import' THEN "html_import"."profile_at" END AS "location_observed_at",
    CASE m."country_source"
         WHEN 'affiliate' THEN "affiliate"."country"
         WHEN 'cbhours' THEN "cbhours"."country"
         WHEN 'profile_cache' THEN "profile_cache"."country"
         WHEN 'followed_cams' THEN "followed_cams"."country"
         WHEN 'followers' THEN "followers"."country"
         WHEN 'html_import' THEN "html_import"."country" END AS "country",
    m."country_source",
    CASE m."country_source"
         WHEN 'affiliate' THEN "affiliate"."profile_at"
         WHEN 'cbhours' THEN "cbhours"."profile_at"
         WHEN 'profile_cache' THEN "profile_cache"."profile_at"
         WHEN 'followed_cams' THEN "followed_cams"."profile_at"
         WHEN 'followers' THEN "followers"."profile_at"
         WHEN 'html_import' THEN "html_import"."profile_at" END AS "country_observed_at",
    CASE m."spoken_languages_source"
         WHEN 'affiliate' THEN "affiliate"."spoken_languages"
         WHEN 'cbhours' THEN "cbhours"."spoken_languages"
         WHEN 'profile_cache' THEN "profile_cache"."spoken_languages"
         WHEN 'followed_cams' THEN "followed_cams"."spoken_languages"
         WHEN 'followers' THEN "followers"."spoken_languages"
         WHEN 'html_import' THEN "html_import"."spoken_languages" END AS "spoken_languages",
    m."spoken_languages_source",
    CASE m."spoken_languages_source"
         WHEN 'affiliate' THEN "affiliate"."profile_at"
         WHEN 'cbhours' THEN "cbhours"."profile_at"
         WHEN 'profile_cache' THEN "profile_cache"."profile_at"
         WHEN 'followed_cams' THEN "followed_cams"."profile_at"
         WHEN 'followers' THEN "followers"."profile_at"
         WHEN 'html_import' THEN "html_import"."profile_at" END AS "spoken_languages_observed_at",
    CASE m."live_source"
         WHEN 'affiliate' THEN "affiliate"."online"
         WHEN 'cbhours' THEN "cbhours"."online"
         WHEN 'followed_cams' THEN "followed_cams"."online"
         WHEN 'followers' THEN "followers"."online"
         WHEN 'html_import' THEN "html_import"."online" END AS "online",
    CASE m."live_source"
         WHEN 'affiliate' THEN "affiliate"."current_show"
         WHEN 'cbhours' THEN "cbhours"."current_show"
         WHEN 'followed_cams' THEN "followed_cams"."current_show"
         WHEN 'followers' THEN "followers"."current_show"
         WHEN 'html_import' THEN "html_import"."current_show" END AS "current_show",
    CASE m."live_source"
         WHEN 'affiliate' THEN "affiliate"."viewers"
         WHEN 'cbhours' THEN "cbhours"."viewers"
         WHEN 'followed_cams' THEN "followed_cams"."viewers"
         WHEN 'followers' THEN "followers"."viewers"
         WHEN 'html_import' THEN "html_import"."viewers" END AS "viewers",
    CASE m."live_source"
         WHEN 'affiliate' THEN "affiliate"."subject"
         WHEN 'cbhours' THEN "cbhours"."subject"
         WHEN 'followed_cams' THEN "followed_cams"."subject"
         WHEN 'followers' THEN "followers"."subject"
         WHEN 'html_import' THEN "html_import"."subject" END AS "subject",
    m."live_source",
    CASE m."live_source"
         WHEN 'affiliate' THEN "affiliate"."live_at"
         WHEN 'cbhours' THEN "cbhours"."live_at"
         WHEN 'followed_cams' THEN "followed_cams"."live_at"
         WHEN 'followers' THEN "followers"."live_at"
         WHEN 'html_import' THEN "html_import"."live_at" END AS "live_observed_at",
    m."live_stale",
    CASE m."followers_source"
         WHEN 'cbhours' THEN "cbhours"."followers"
         WHEN 'affiliate' THEN "affiliate"."followers"
         WHEN 'followed_cams' THEN "followed_cams"."followers"
         WHEN 'followers' THEN "followers"."followers"
         WHEN 'html_import' THEN "html_import"."followers" END AS "followers",
    m."followers_source",
    CASE m."followers_source"
         WHEN 'cbhours' THEN "cbhours"."followers_at"
         WHEN 'affiliate' THEN "affiliate"."followers_at"
         WHEN 'followed_cams' THEN "followed_cams"."followers_at"
         WHEN 'followers' THEN "followers"."followers_at"
         WHEN 'html_import' THEN "html_import"."followers_at" END AS "followers_observed_at",
    m."followers_stale",
    CASE m."tags_source"
         WHEN 'affiliate' THEN "affiliate"."tags"
         WHEN 'cbhours' THEN "cbhours"."tags"
         WHEN 'followed_cams' THEN "followed_cams"."tags"
         WHEN 'followers' THEN "followers"."tags"
         WHEN 'html_import' THEN "html_import"."tags" END AS "tags",
    m."tags_source",
    CASE m."tags_source"
         WHEN 'affiliate' THEN "affiliate"."tags_at"
         WHEN 'cbhours' THEN "cbhours"."tags_at"
         WHEN 'followed_cams' THEN "followed_cams"."tags_at"
         WHEN 'followers' THEN "followers"."tags_at"
         WHEN 'html_import' THEN "html_import"."tags_at" END AS "tags_observed_at",
    m."tags_stale",
    "cbhours"."rank" AS "rank",
    "cbhours"."grank" AS "grank",
    CASE WHEN "cbhours"."rank_at" IS NOT NULL THEN 'cbhours' END AS "rank_source",
    "cbhours"."rank_at" AS "rank_observed_at",
    CASE m."image_source"
         WHEN 'affiliate' THEN "affiliate"."image_url"
         WHEN 'cbhours' THEN "cbhours"."image_url"
         WHEN 'profile_cache' THEN "profile_cache"."image_url"
         WHEN 'followed_cams' THEN "followed_cams"."image_url"
         WHEN 'followers' THEN "followers"."image_url"
         WHEN 'html_import' THEN "html_import"."image_url" END AS "image_url",
    m."image_source",
    CASE m."image_source"
         WHEN 'affiliate' THEN "affiliate"."image_at"
         WHEN 'cbhours' THEN "cbhours"."image_at"
         WHEN 'profile_cache' THEN "profile_cache"."image_at"
         WHEN 'followed_cams' THEN "followed_cams"."image_at"
         WHEN 'followers' THEN "followers"."image_at"
         WHEN 'html_import' THEN "html_import"."image_at" END AS "image_observed_at",
    m."image_stale"
FROM persons p
CROSS JOIN (SELECT roomwatch_recent_since() AS at OFFSET 0) k
LEFT JOIN person_source_latest "affiliate" ON "affiliate".person_id = p.person_id AND "affiliate".source = 'affiliate'
LEFT JOIN person_source_latest "cbhours" ON "cbhours".person_id = p.person_id AND "cbhours".source = 'cbhours'
LEFT JOIN person_source_latest "profile_cache" ON "profile_cache".person_id = p.person_id AND "profile_cache".source = 'profile_cache'
LEFT JOIN person_source_latest "followed_cams" ON "followed_cams".person_id = p.person_id AND "followed_cams".source = 'followed_cams'
LEFT JOIN person_source_latest "followers" ON "followers".person_id = p.person_id AND "followers".source = 'followers'
LEFT JOIN person_source_latest "html_import" ON "html_import".person_id = p.person_id AND "html_import".source = 'html_import'
CROSS JOIN LATERAL (
    SELECT
    CASE WHEN "affiliate"."display_name" IS NOT NULL THEN 'affiliate'
         WHEN "cbhours"."display_name" IS NOT NULL THEN 'cbhours'
         WHEN "profile_cache"."display_name" IS NOT NULL THEN 'profile_cache'
         WHEN "followed_cams"."display_name" IS NOT NULL THEN 'followed_cams'
         WHEN "followers"."display_name" IS NOT NULL THEN 'followers'
         WHEN "html_import"."display_name" IS NOT NULL THEN 'html_import' END AS "display_name_source",
    CASE WHEN "affiliate"."age" IS NOT NULL THEN 'affiliate'
         WHEN "cbhours"."age" IS NOT NULL THEN 'cbhours'
         WHEN "profile_cache"."age" IS NOT NULL THEN 'profile_cache'
         WHEN "followed_cams"."age" IS NOT NULL THEN 'followed_cams'
         WHEN "followers"."age" IS NOT NULL THEN 'followers'
         WHEN "html_import"."age" IS NOT NULL THEN 'html_import' END AS "age_source",
    CASE WHEN "affiliate"."birthday" IS NOT NULL THEN 'affiliate'
         WHEN "cbhours"."birthday" IS NOT NULL THEN 'cbhours'
         WHEN "profile_cache"."birthday" IS NOT NULL THEN 'profile_cache'
         WHEN "followed_cams"."birthday" IS NOT NULL THEN 'followed_cams'
         WHEN "followers"."birthday" IS NOT NULL THEN 'followers'
         WHEN "html_import"."birthday" IS NOT NULL THEN 'html_import' END AS "birthday_source",
    CASE WHEN "affiliate"."gender" IS NOT NULL THEN 'affiliate'
         WHEN "cbhours"."gender" IS NOT NULL THEN 'cbhours'
         WHEN "profile_cache"."gender" IS NOT NULL THEN 'profile_cache'
         WHEN "followed_cams"."gender" IS NOT NULL THEN 'followed_cams'
         WHEN "followers"."gender" IS NOT NULL THEN 'followers'
         WHEN "html_import"."gender" IS NOT NULL THEN 'html_import' END AS "gender_source",
    CASE WHEN "affiliate"."location" IS NOT NULL THEN 'affiliate'
         WHEN "cbhours"."location" IS NOT NULL THEN 'cbhours'
         WHEN "profile_cache"."location" IS NOT NULL THEN 'profile_cache'
         WHEN "followed_cams"."location" IS NOT NULL THEN 'followed_cams'
         WHEN "followers"."location" IS NOT NULL THEN 'followers'
         WHEN "html_import"."location" IS NOT NULL THEN 'html_import' END AS "location_source",
    CASE WHEN "affiliate"."country" IS NOT NULL THEN 'affiliate'
         WHEN "cbhours"."country" IS NOT NULL THEN 'cbhours'
         WHEN "profile_cache"."country" IS NOT NULL THEN 'profile_cache'
         WHEN "followed_cams"."country" IS NOT NULL THEN 'followed_cams'
         WHEN "followers"."country" IS NOT NULL THEN 'followers'
         WHEN "html_import"."country" IS NOT NULL THEN 'html_import' END AS "country_source",
    CASE WHEN "affiliate"."spoken_languages" IS NOT NULL THEN 'affiliate'
         WHEN "cbhours"."spoken_languages" IS NOT NULL THEN 'cbhours'
         WHEN "profile_cache"."spoken_languages" IS NOT NULL THEN 'profile_cache'
         WHEN "followed_cams"."spoken_languages" IS NOT NULL THEN 'followed_cams'
         WHEN "followers"."spoken_languages" IS NOT NULL THEN 'followers'
         WHEN "html_import"."spoken_languages" IS NOT NULL THEN 'html_import' END AS "spoken_languages_source",
    CASE WHEN "affiliate"."live_at" >= k.at THEN 'affiliate'
         WHEN "cbhours"."live_at" >= k.at THEN 'cbhours'
         WHEN "followed_cams"."live_at" >= k.at THEN 'followed_cams'
         WHEN "followers"."live_at" >= k.at THEN 'followers'
         WHEN "html_import"."live_at" >= k.at THEN 'html_import'
         ELSE CASE GREATEST("affiliate"."live_at", "cbhours"."live_at", "followed_cams"."live_at", "followers"."live_at", "html_import"."live_at")
              WHEN "affiliate"."live_at" THEN 'affiliate'
              WHEN "cbhours"."live_at" THEN 'cbhours'
              WHEN "followed_cams"."live_at" THEN 'followed_cams'
              WHEN "followers"."live_at" THEN 'followers'
              WHEN "html_import"."live_at" THEN 'html_import' END END AS "live_source",
    GREATEST("affiliate"."live_at", "cbhours"."live_at", "followed_cams"."live_at", "followers"."live_at", "html_import"."live_at") < k.at AS "live_stale",
    CASE WHEN "cbhours"."followers_at" >= k.at THEN 'cbhours'
         WHEN "affiliate"."followers_at" >= k.at THEN 'affiliate'
         WHEN "followed_cams"."followers_at" >= k.at THEN 'followed_cams'
         WHEN "followers"."followers_at" >= k.at THEN 'followers'
         WHEN "html_import"."followers_at" >= k.at THEN 'html_import'
         ELSE CASE GREATEST("cbhours"."followers_at", "affiliate"."followers_at", "followed_cams"."followers_at", "followers"."followers_at", "html_import"."followers_at")
              WHEN "cbhours"."followers_at" THEN 'cbhours'
              WHEN "affiliate"."followers_at" THEN 'affiliate'
              WHEN "followed_cams"."followers_at" THEN 'followed_cams'
              WHEN "followers"."followers_at" THEN 'followers'
              WHEN "html_import"."followers_at" THEN 'html_import' END END AS "followers_source",
    GREATEST("cbhours"."followers_at", "affiliate"."followers_at", "followed_cams"."followers_at", "followers"."followers_at", "html_import"."followers_at") < k.at AS "followers_stale",
    CASE WHEN "affiliate"."tags_at" >= k.at THEN 'affiliate'
         WHEN "cbhours"."tags_at" >= k.at THEN 'cbhours'
         WHEN "followed_cams"."tags_at" >= k.at THEN 'followed_cams'
         WHEN "followers"."tags_at" >= k.at THEN 'followers'
         WHEN "html_import"."tags_at" >= k.at THEN 'html_import'
         ELSE CASE GREATEST("affiliate"."tags_at", "cbhours"."tags_at", "followed_cams"."tags_at", "followers"."tags_at", "html_import"."tags_at")
              WHEN "affiliate"."tags_at" THEN 'affiliate'
              WHEN "cbhours"."tags_at" THEN 'cbhours'
              WHEN "followed_cams"."tags_at" THEN 'followed_cams'
              WHEN "followers"."tags_at" THEN 'followers'
              WHEN "html_import"."tags_at" THEN 'html_import' END END AS "tags_source",
    GREATEST("affiliate"."tags_at", "cbhours"."tags_at", "followed_cams"."tags_at", "followers"."tags_at", "html_import"."tags_at") < k.at AS "tags_stale",
    CASE WHEN "affiliate"."image_at" >= k.at THEN 'affiliate'
         WHEN "cbhours"."image_at" >= k.at THEN 'cbhours'
         WHEN "profile_cache"."image_at" >= k.at THEN 'profile_cache'
         WHEN "followed_cams"."image_at" >= k.at THEN 'followed_cams'
         WHEN "followers"."image_at" >= k.at THEN 'followers'
         WHEN "html_import"."image_at" >= k.at THEN 'html_import'
         ELSE CASE GREATEST("affiliate"."image_at", "cbhours"."image_at", "profile_cache"."image_at", "followed_cams"."image_at", "followers"."image_at", "html_import"."image_at")
              WHEN "affiliate"."image_at" THEN 'affiliate'
              WHEN "cbhours"."image_at" THEN 'cbhours'
              WHEN "profile_cache"."image_at" THEN 'profile_cache'
              WHEN "followed_cams"."image_at" THEN 'followed_cams'
              WHEN "followers"."image_at" THEN 'followers'
              WHEN "html_import"."image_at" THEN 'html_import' END END AS "image_source",
    GREATEST("affiliate"."image_at", "cbhours"."image_at", "profile_cache"."image_at", "followed_cams"."image_at", "followers"."image_at", "html_import"."image_at") < k.at AS "image_stale"
) m;

-- Every person's summary as the merge view gives it now.
CREATE VIEW v_person_summary AS
SELECT "v"."person_id", "v"."username", "v"."display_name", "v"."gender", "v"."age", "v"."country",
       "v"."online", "v"."current_show", "v"."viewers", "v"."followers", "v"."tags", "v"."rank",
       "v"."grank", "v"."following", "v"."follower", "v"."watch", "v"."last_seen_online_at",
       "v"."image_id", "v"."image_url",
    n."live" AS live_newest_at,
    COALESCE(LEAST(
        CASE WHEN v."live_observed_at" >= r.since AND n."live" > v."live_observed_at"
             THEN v."live_observed_at" + (now() - r.since) END,
        CASE WHEN v."followers_observed_at" >= r.since AND n."followers" > v."followers_observed_at"
             THEN v."followers_observed_at" + (now() - r.since) END,
        CASE WHEN v."tags_observed_at" >= r.since AND n."tags" > v."tags_observed_at"
             THEN v."tags_observed_at" + (now() - r.since) END,
        CASE WHEN v."image_observed_at" >= r.since AND n."image" > v."image_observed_at"
             THEN v."image_observed_at" + (now() - r.since) END
    ), 'infinity') AS valid_until
FROM v_person_current_state v
CROSS JOIN (SELECT roomwatch_recent_since() AS since OFFSET 0) r
CROSS JOIN LATERAL (
    SELECT max(l."live_at") AS "live", max(l."followers_at") AS "followers",
           max(l."tags_at") AS "tags", max(l."image_at") AS "image"
    FROM person_source_latest l WHERE l.person_id = v.person_id
) n;

-- Recomputes and stores the summaries of `ids`. Planned for the ids of each call: a plan kept
-- from a call on nearly empty tables (a new database's first writes) scans whole tables and
-- filters them by the id list, which turns quadratic once they fill up.
CREATE OR REPLACE FUNCTION roomwatch_refresh_summaries(ids bigint[]) RETURNS void
LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    -- Lock first, merge after: in READ COMMITTED each statement takes a new snapshot, so a
    -- concurrent writer of the same person (which holds these locks until it commits) is seen
    -- by the merge below instead of being overwritten by an older one. Ascending order keeps
    -- two such writers from deadlocking on these rows.
    PERFORM 1 FROM person_summary WHERE person_id = ANY (ids) ORDER BY person_id FOR UPDATE;
    INSERT INTO person_summary AS s
    SELECT * FROM v_person_summary WHERE person_id = ANY (ids) ORDER BY person_id
    ON CONFLICT (person_id) DO UPDATE SET
        "username" = excluded."username", "display_name" = excluded."display_name",
        "gender" = excluded."gender", "age" = excluded."age", "country" = excluded."country",
        "online" = excluded."online", "current_show" = excluded."current_show",
        "viewers" = excluded."viewers", "followers" = excluded."followers",
        "tags" = excluded."tags", "rank" = excluded."rank", "grank" = excluded."grank",
        "following" = excluded."following", "follower" = excluded."follower",
        "watch" = excluded."watch", "last_seen_online_at" = excluded."last_seen_online_at",
        "image_id" = excluded."image_id", "image_url" = excluded."image_url",
        "live_newest_at" = excluded."live_newest_at", "valid_until" = excluded."valid_until"
    -- An unchanged row is not rewritten (no dead tuple, no index churn).
    WHERE ("s"."username", "s"."display_name", "s"."gender", "s"."age", "s"."country", "s"."online",
           "s"."current_show", "s"."viewers", "s"."followers", "s"."tags", "s"."rank", "s"."grank",
           "s"."following", "s"."follower", "s"."watch", "s"."last_seen_online_at", "s"."image_id",
           "s"."image_url", "s"."live_newest_at", "s"."valid_until")
          IS DISTINCT FROM
          ("excluded"."username", "excluded"."display_name", "excluded"."gender", "excluded"."age",
           "excluded"."country", "excluded"."online", "excluded"."current_show",
           "excluded"."viewers", "excluded"."followers", "excluded"."tags", "excluded"."rank",
           "excluded"."grank", "excluded"."following", "excluded"."follower", "excluded"."watch",
           "excluded"."last_seen_online_at", "excluded"."image_id", "excluded"."image_url",
           "excluded"."live_newest_at", "excluded"."valid_until");
END $$;

-- A changed persons row carries only columns the summary copies as they are; no merge needed.
CREATE OR REPLACE FUNCTION roomwatch_summary_after_persons_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM person_summary
    WHERE person_id IN (SELECT person_id FROM new_rows) ORDER BY person_id FOR UPDATE;
    UPDATE person_summary s
    SET "username" = p."username", "following" = p."following", "follower" = p."follower",
        "watch" = p."watch", "last_seen_online_at" = p."last_seen_online_at",
        "image_id" = p."latest_image_id"
    FROM persons p
    WHERE p.person_id = s.person_id AND p.person_id IN (SELECT person_id FROM new_rows)
      AND ("s"."username", "s"."following", "s"."follower", "s"."watch", "s"."last_seen_online_at",
           "s"."image_id")
          IS DISTINCT FROM
          ("p"."username", "p"."following", "p"."follower", "p"."watch", "p"."last_seen_online_at",
           "p"."latest_image_id");
    PERFORM pg_notify('roomwatch_persons', '');
    RETURN NULL;
END $$;
-- END GENERATED by storage/merge_rules.py

-- The persons whose summary is past valid_until, merged now (what list queries read for them).
-- PL/pgSQL, so never inlined: the merge's plan (about 2 ms to make, 0.1 ms to run for a few
-- persons) is made once per session, not again in every list query.
CREATE FUNCTION roomwatch_due_summaries() RETURNS SETOF person_summary
LANGUAGE plpgsql STABLE ROWS 10 AS $$
BEGIN
    RETURN QUERY SELECT * FROM v_person_summary
    WHERE person_id = ANY (ARRAY(SELECT person_id FROM person_summary WHERE valid_until < now()));
END $$;

-- Recomputes at most `batch` summaries whose merge may have moved with time; returns how many.
CREATE FUNCTION roomwatch_refresh_due_summaries(batch integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    ids := ARRAY(SELECT person_id FROM person_summary WHERE valid_until < now()
                 ORDER BY valid_until LIMIT batch);
    PERFORM roomwatch_refresh_summaries(ids);
    RETURN cardinality(ids);
END $$;

-- Recomputes the persons of the statement's rows: its triggers all name their transition table
-- changed_rows (the new rows of an insert or update, the old rows of a delete).
CREATE FUNCTION roomwatch_summary_after_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM roomwatch_refresh_summaries(ARRAY(SELECT DISTINCT person_id FROM changed_rows));
    PERFORM pg_notify('roomwatch_persons', '');
    RETURN NULL;
END $$;

CREATE FUNCTION roomwatch_summary_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('roomwatch_persons', '');
    RETURN NULL;
END $$;

-- "Recent" changed: every row's merge and valid_until may have moved; recompute them all.
CREATE FUNCTION roomwatch_summary_after_settings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows n JOIN old_rows o USING (key)
               WHERE n.key = 'recent_interval' AND n.value IS DISTINCT FROM o.value) THEN
        PERFORM roomwatch_refresh_summaries(ARRAY(SELECT person_id FROM persons));
        PERFORM pg_notify('roomwatch_persons', '');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER person_summary_persons_insert AFTER INSERT ON persons
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION roomwatch_summary_after_change();
CREATE TRIGGER person_summary_persons_update AFTER UPDATE ON persons
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION roomwatch_summary_after_persons_update();
-- Deleted persons lose their summary through the foreign key.
CREATE TRIGGER person_summary_persons_delete AFTER DELETE ON persons
    FOR EACH STATEMENT EXECUTE FUNCTION roomwatch_summary_notify();
CREATE TRIGGER person_summary_latest_insert AFTER INSERT ON person_source_latest
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION roomwatch_summary_after_change();
CREATE TRIGGER person_summary_latest_update AFTER UPDATE ON person_source_latest
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION roomwatch_summary_after_change();
CREATE TRIGGER person_summary_latest_delete AFTER DELETE ON person_source_latest
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION roomwatch_summary_after_change();
CREATE TRIGGER person_summary_settings_update AFTER UPDATE ON roomwatch_settings
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION roomwatch_summary_after_settings();

-- person_tag_followers: one row per person and merged tag, with the person's follower count, so
-- that "persons tagged X by followers" (the list's default sort) reads 51 entries of one index
-- range, however common or rare X is. With person_summary's GIN index on tags, a page of a
-- common tag walked ~900 rows of the followers index and a rare one ~4,500.
--
-- Kept from person_summary by its triggers: a person's rows are rewritten only when its tags or
-- follower count change (a 10,000-room poll changes the counts of some of those online).

CREATE TABLE person_tag_followers (
    tag        text NOT NULL,
    followers  integer,
    person_id  bigint NOT NULL
);
CREATE INDEX person_tag_followers_order
    ON person_tag_followers (tag, followers DESC NULLS LAST, person_id);
CREATE INDEX person_tag_followers_person ON person_tag_followers (person_id);

CREATE FUNCTION roomwatch_tag_followers_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO person_tag_followers (tag, followers, person_id)
    SELECT DISTINCT t.tag, n.followers, n.person_id
    FROM new_rows n CROSS JOIN LATERAL unnest(n.tags) AS t (tag);
    RETURN NULL;
END $$;

CREATE FUNCTION roomwatch_tag_followers_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- EXECUTE: planned for this call's transition tables. A plan kept from a call with a few
    -- rows joins old and new rows in a nested loop, quadratic for a 100,000-row statement.
    -- One statement: the DELETE removes the rows of the snapshot, the INSERT adds new ones.
    EXECUTE $sql$
    WITH moved AS (
        SELECT n.person_id, n.tags, n.followers
        FROM new_rows n JOIN old_rows o USING (person_id)
        WHERE (n.tags, n.followers) IS DISTINCT FROM (o.tags, o.followers)
    ), gone AS (
        DELETE FROM person_tag_followers t USING moved m WHERE t.person_id = m.person_id
    )
    INSERT INTO person_tag_followers (tag, followers, person_id)
    SELECT DISTINCT t.tag, m.followers, m.person_id
    FROM moved m CROSS JOIN LATERAL unnest(m.tags) AS t (tag)
    $sql$;
    RETURN NULL;
END $$;

CREATE FUNCTION roomwatch_tag_followers_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM person_tag_followers t USING old_rows o WHERE t.person_id = o.person_id;
    RETURN NULL;
END $$;

CREATE TRIGGER person_tag_followers_insert AFTER INSERT ON person_summary
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION roomwatch_tag_followers_after_insert();
CREATE TRIGGER person_tag_followers_update AFTER UPDATE ON person_summary
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION roomwatch_tag_followers_after_update();
CREATE TRIGGER person_tag_followers_delete AFTER DELETE ON person_summary
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION roomwatch_tag_followers_after_delete();
