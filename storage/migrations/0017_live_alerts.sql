-- Live alerts (storage/notices.py, agent/alerts.py): a per-person mute, and the broadcasts of
-- the persons of interest, so "went live" is told once per broadcast, not once per poll.

-- A muted person's going live is never told (the watch list and the rest are untouched).
ALTER TABLE persons ADD COLUMN alerts_muted boolean NOT NULL DEFAULT false;

-- How far apart two sightings online may be and still belong to one broadcast: a poll that
-- misses a room (or a source that briefly says offline) does not start a new one. The agent
-- writes it from alerts.live_gap_minutes at start-up (storage/settings.py).
INSERT INTO roomwatch_settings (key, value) VALUES ('broadcast_gap', '15 minutes')
ON CONFLICT (key) DO NOTHING;

CREATE FUNCTION roomwatch_broadcast_gap() RETURNS interval LANGUAGE sql STABLE AS $$
    SELECT COALESCE((SELECT value FROM roomwatch_settings WHERE key = 'broadcast_gap'),
                    '15 minutes')::interval
$$;

-- One row per broadcast of a watched or followed person, as the merged live state saw it
-- (person_summary.online, whichever source won: the Affiliate feed, the room list, CBHours).
-- Kept by the triggers below in the writer's own transaction. Times are observation times
-- (person_summary.live_newest_at): started_at is the first sighting online, last_online_at the
-- newest, ended_at when the merged state next said offline (NULL while it has not; its last
-- sighting when a new broadcast began without an offline seen).
-- A sighting online continues the person's newest broadcast when it comes within the gap of
-- last_online_at, or, when nothing said offline in between, within four gaps: a source polled
-- seldom (the room list, every 30 minutes) sees one broadcast, not one per poll. Later, it
-- starts a new one.
-- announce is false for a broadcast found already under way: the person became of interest
-- (watched, followed) while online, or was online when this migration ran. Only persons of
-- interest are tracked: a 10,000-room poll then costs a filter of its rows, not an upsert each.
CREATE TABLE person_broadcasts (
    broadcast_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id       bigint NOT NULL REFERENCES persons (person_id) ON DELETE CASCADE,
    started_at      timestamptz NOT NULL,
    last_online_at  timestamptz NOT NULL,
    ended_at        timestamptz,
    announce        boolean NOT NULL
);
CREATE INDEX person_broadcasts_person ON person_broadcasts (person_id, started_at DESC);
CREATE INDEX person_broadcasts_started ON person_broadcasts (started_at DESC);

-- Notes the sightings online of the rows in `live` (person_id, at, announce): each continues
-- the person's newest broadcast (see above) or starts one. The caller holds the persons'
-- person_summary rows (the statement that changed them), so two writers of one person take
-- turns here and never both start a broadcast.
CREATE FUNCTION roomwatch_note_broadcasts(ids bigint[], ats timestamptz[], announces boolean[])
RETURNS void LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    gap interval := roomwatch_broadcast_gap();
BEGIN
    WITH live AS (
        SELECT DISTINCT ON (l.person_id) l.person_id, l.at, l.announce
        FROM unnest(ids, ats, announces) AS l (person_id, at, announce)
        ORDER BY l.person_id, l.at DESC
    ), newest AS (
        SELECT l.person_id, l.at, l.announce, b.broadcast_id, b.last_online_at,
               l.at <= b.last_online_at + CASE WHEN b.ended_at IS NULL THEN 4 * gap ELSE gap END
                   AS continues
        FROM live l LEFT JOIN LATERAL (
            SELECT broadcast_id, last_online_at, ended_at FROM person_broadcasts p
            WHERE p.person_id = l.person_id ORDER BY p.started_at DESC LIMIT 1
        ) b ON true
    ), continued AS (
        UPDATE person_broadcasts p SET last_online_at = n.at, ended_at = NULL
        FROM newest n
        WHERE p.broadcast_id = n.broadcast_id AND n.continues AND n.at > n.last_online_at
    ), superseded AS (  -- over without an offline seen: it ended after its last sighting
        UPDATE person_broadcasts p SET ended_at = n.last_online_at
        FROM newest n
        WHERE p.broadcast_id = n.broadcast_id AND NOT n.continues AND p.ended_at IS NULL
    )
    INSERT INTO person_broadcasts (person_id, started_at, last_online_at, announce)
    SELECT person_id, at, at, announce FROM newest WHERE NOT COALESCE(continues, false);
END $$;

-- EXECUTE: planned for each call's transition tables (see roomwatch_tag_followers_after_update).
CREATE FUNCTION roomwatch_broadcasts_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE $sql$
    SELECT roomwatch_note_broadcasts(array_agg(person_id),
                                     array_agg(COALESCE(live_newest_at, now())),
                                     array_agg(true))
    FROM new_rows WHERE online AND (watch OR following IS TRUE)
    HAVING count(*) > 0
    $sql$;
    RETURN NULL;
END $$;

-- A person online before they became of interest: their broadcast is noted, not announced.
-- A person whose merged state turns offline (of interest or not, now): their broadcast ends.
CREATE FUNCTION roomwatch_broadcasts_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE $sql$
    UPDATE person_broadcasts b SET ended_at = COALESCE(n.live_newest_at, now())
    FROM new_rows n JOIN old_rows o USING (person_id)
    WHERE o.online AND n.online IS NOT TRUE
      AND b.person_id = n.person_id AND b.ended_at IS NULL
    $sql$;
    EXECUTE $sql$
    SELECT roomwatch_note_broadcasts(
        array_agg(n.person_id),
        array_agg(COALESCE(n.live_newest_at, now())),
        array_agg(NOT COALESCE(o.online AND NOT (o.watch OR o.following IS TRUE), false)))
    FROM new_rows n LEFT JOIN old_rows o USING (person_id)
    WHERE n.online AND (n.watch OR n.following IS TRUE)
    HAVING count(*) > 0
    $sql$;
    RETURN NULL;
END $$;

CREATE TRIGGER person_broadcasts_insert AFTER INSERT ON person_summary
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION roomwatch_broadcasts_after_insert();
CREATE TRIGGER person_broadcasts_update AFTER UPDATE ON person_summary
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION roomwatch_broadcasts_after_update();

-- Persons of interest online now: their broadcasts began before anyone was counting.
INSERT INTO person_broadcasts (person_id, started_at, last_online_at, announce)
SELECT person_id, COALESCE(live_newest_at, now()), COALESCE(live_newest_at, now()), false
FROM person_summary WHERE online AND (watch OR following IS TRUE);
