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

INSERT INTO person_tag_followers (tag, followers, person_id)
SELECT DISTINCT t.tag, s.followers, s.person_id
FROM person_summary s CROSS JOIN LATERAL unnest(s.tags) AS t (tag);
