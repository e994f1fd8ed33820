-- The writer keeps up, round 4 (issue 13). Two changes to what an Affiliate poll costs, the
-- stored data unchanged:
-- * person_tag_followers follows summary updates through a row trigger whose WHEN names the two
--   columns it depends on (tags and the follower key). A poll updates about 10,000 summary rows
--   and moves the tags or the key of about 20: the statement trigger captured every old and new
--   row and joined them (about 150 ms a poll); the row trigger runs for those 20 alone.
-- * affiliate_hourly's partitions keep half of each page free (fillfactor 50). Each poll of an
--   hour updates that hour's row of every person online; with full pages nearly none of those
--   updates was HOT (157 of 29,400), so each one also inserted into the primary key's index.

CREATE OR REPLACE FUNCTION roomwatch_tag_followers_after_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.tags IS DISTINCT FROM OLD.tags THEN
        DELETE FROM person_tag_followers WHERE person_id = OLD.person_id;
        INSERT INTO person_tag_followers (tag, followers_key, person_id)
        SELECT DISTINCT t.tag, NEW.followers_key, NEW.person_id
        FROM unnest(NEW.tags) AS t (tag);
    ELSE
        UPDATE person_tag_followers SET followers_key = NEW.followers_key
        WHERE person_id = NEW.person_id;
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER person_tag_followers_update ON person_summary;
CREATE TRIGGER person_tag_followers_update AFTER UPDATE ON person_summary
    FOR EACH ROW
    WHEN ((OLD.tags, OLD.followers_key) IS DISTINCT FROM (NEW.tags, NEW.followers_key))
    EXECUTE FUNCTION roomwatch_tag_followers_after_update();

-- Creates the time partitions of `parent` covering first..last if missing (as in the baseline),
-- affiliate_hourly's with room for HOT updates.
CREATE OR REPLACE FUNCTION roomwatch_ensure_partitions(
    parent regclass, granularity text, first timestamptz, last timestamptz
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    step interval := CASE granularity WHEN 'day' THEN interval '1 day' ELSE interval '1 month' END;
    fmt text := CASE granularity WHEN 'day' THEN 'YYYYMMDD' ELSE 'YYYYMM' END;
    lower_bound timestamp := date_trunc(granularity, first AT TIME ZONE 'UTC');
    options text := CASE parent WHEN 'affiliate_hourly'::regclass THEN 'WITH (fillfactor = 50)'
                                ELSE '' END;
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
                'CREATE TABLE IF NOT EXISTS %I PARTITION OF %s FOR VALUES FROM (%L) TO (%L) %s',
                part, parent, lower_bound AT TIME ZONE 'UTC', (lower_bound + step) AT TIME ZONE 'UTC',
                options);
        END IF;
        lower_bound := lower_bound + step;
    END LOOP;
END $$;

-- The partitions already there: their new pages keep the room (existing pages as they are).
DO $$
DECLARE
    part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits
                WHERE inhparent = 'affiliate_hourly'::regclass LOOP
        EXECUTE format('ALTER TABLE %s SET (fillfactor = 50)', part);
    END LOOP;
END $$;
