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

-- The start of the "recent" window: observations at or after it are recent.
CREATE FUNCTION roomwatch_recent_since() RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT now() - COALESCE((SELECT value FROM roomwatch_settings WHERE key = 'recent_interval'),
                            '10 minutes')::interval
$$;

-- Every person's summary as the merge view gives it now.
CREATE VIEW v_person_summary AS
SELECT v.person_id, v.username, v.display_name, v.gender, v.age, v.country, v.online,
       v.current_show, v.viewers, v.followers, v.tags, v.rank, v.grank, v.following,
       v.follower, v.watch, v.last_seen_online_at, v.image_id, v.image_url,
       n.live AS live_newest_at,
       -- A group's merge moves with time only when its winner won for being recent and some
       -- other source has a newer observation: once the winner leaves the window, that newer
       -- one (or a source between them) wins. Otherwise the winner stays the newest known, and
       -- only its staleness changes (computed when read).
       COALESCE(LEAST(
           CASE WHEN v.live_observed_at + r.recent >= now() AND n.live > v.live_observed_at
                THEN v.live_observed_at + r.recent END,
           CASE WHEN v.followers_observed_at + r.recent >= now()
                     AND n.followers > v.followers_observed_at
                THEN v.followers_observed_at + r.recent END,
           CASE WHEN v.tags_observed_at + r.recent >= now() AND n.tags > v.tags_observed_at
                THEN v.tags_observed_at + r.recent END,
           CASE WHEN v.image_observed_at + r.recent >= now() AND n.image > v.image_observed_at
                THEN v.image_observed_at + r.recent END
       ), 'infinity') AS valid_until
FROM v_person_current_state v
CROSS JOIN (
    SELECT COALESCE((SELECT value FROM roomwatch_settings WHERE key = 'recent_interval'),
                    '10 minutes')::interval AS recent
) r
CROSS JOIN LATERAL (
    SELECT max(l.live_at) AS live, max(l.followers_at) AS followers,
           max(l.tags_at) AS tags, max(l.image_at) AS image
    FROM person_source_latest l WHERE l.person_id = v.person_id
) n;

-- The persons whose summary is past valid_until, merged now (what list queries read for them).
-- PL/pgSQL, so never inlined: the merge's plan (about 2 ms to make, 0.1 ms to run for a few
-- persons) is made once per session, not again in every list query.
CREATE FUNCTION roomwatch_due_summaries() RETURNS SETOF person_summary
LANGUAGE plpgsql STABLE ROWS 10 AS $$
BEGIN
    RETURN QUERY SELECT * FROM v_person_summary
    WHERE person_id = ANY (ARRAY(SELECT person_id FROM person_summary WHERE valid_until < now()));
END $$;

-- Recomputes and stores the summaries of `ids`. Planned for the ids of each call: a plan kept
-- from a call on nearly empty tables (a new database's first writes) scans whole tables and
-- filters them by the id list, which turns quadratic once they fill up.
CREATE FUNCTION roomwatch_refresh_summaries(ids bigint[]) RETURNS void LANGUAGE plpgsql
SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    -- Lock first, merge after: in READ COMMITTED each statement takes a new snapshot, so a
    -- concurrent writer of the same person (which holds these locks until it commits) is seen
    -- by the merge below instead of being overwritten by an older one. Ascending order keeps
    -- two such writers from deadlocking on these rows.
    PERFORM 1 FROM person_summary WHERE person_id = ANY (ids) ORDER BY person_id FOR UPDATE;
    INSERT INTO person_summary AS s
    SELECT * FROM v_person_summary WHERE person_id = ANY (ids) ORDER BY person_id
    ON CONFLICT (person_id) DO UPDATE SET
        username = excluded.username, display_name = excluded.display_name,
        gender = excluded.gender, age = excluded.age, country = excluded.country,
        online = excluded.online, current_show = excluded.current_show,
        viewers = excluded.viewers, followers = excluded.followers, tags = excluded.tags,
        rank = excluded.rank, grank = excluded.grank, following = excluded.following,
        follower = excluded.follower, watch = excluded.watch,
        last_seen_online_at = excluded.last_seen_online_at, image_id = excluded.image_id,
        image_url = excluded.image_url, live_newest_at = excluded.live_newest_at,
        valid_until = excluded.valid_until
    -- An unchanged row is not rewritten (no dead tuple, no index churn).
    WHERE (s.username, s.display_name, s.gender, s.age, s.country, s.online, s.current_show,
           s.viewers, s.followers, s.tags, s.rank, s.grank, s.following, s.follower, s.watch,
           s.last_seen_online_at, s.image_id, s.image_url, s.live_newest_at, s.valid_until)
          IS DISTINCT FROM
          (excluded.username, excluded.display_name, excluded.gender, excluded.age,
           excluded.country, excluded.online, excluded.current_show, excluded.viewers,
           excluded.followers, excluded.tags, excluded.rank, excluded.grank, excluded.following,
           excluded.follower, excluded.watch, excluded.last_seen_online_at, excluded.image_id,
           excluded.image_url, excluded.live_newest_at, excluded.valid_until);
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

-- A changed persons row carries only columns the summary copies as they are; no merge needed.
CREATE FUNCTION roomwatch_summary_after_persons_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM person_summary
    WHERE person_id IN (SELECT person_id FROM new_rows) ORDER BY person_id FOR UPDATE;
    UPDATE person_summary s
    SET username = p.username, following = p.following, follower = p.follower,
        watch = p.watch, last_seen_online_at = p.last_seen_online_at,
        image_id = p.latest_image_id
    FROM persons p
    WHERE p.person_id = s.person_id AND p.person_id IN (SELECT person_id FROM new_rows)
      AND (s.username, s.following, s.follower, s.watch, s.last_seen_online_at, s.image_id)
          IS DISTINCT FROM
          (p.username, p.following, p.follower, p.watch, p.last_seen_online_at,
           p.latest_image_id);
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

SELECT roomwatch_refresh_summaries(ARRAY(SELECT person_id FROM persons));
