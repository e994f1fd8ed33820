-- Several accounts in one install (docs/decisions/0007-accounts.md). An account is the owner's
-- username on the site, lower case. Login sessions, the Events and Stats streams, follow
-- events, the complete checks of the follow lists, and the jobs and schedules of the per-account
-- spiders each belong to one.
CREATE TABLE accounts (
    account   text PRIMARY KEY
              CHECK (account = lower(account) AND account <> '' AND account <> 'unknown'),
    added_at  timestamptz NOT NULL DEFAULT now()
);

-- An account comes into being where the install first meets it: a login session that names
-- it, the Events stream's position, a Stats API answer. A session whose account was not
-- detected ('unknown') names none.
CREATE FUNCTION roomwatch_register_account() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.account <> 'unknown' THEN
        INSERT INTO accounts (account) VALUES (NEW.account) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER login_sessions_account BEFORE INSERT OR UPDATE OF account ON login_sessions
    FOR EACH ROW EXECUTE FUNCTION roomwatch_register_account();
CREATE TRIGGER room_event_streams_account BEFORE INSERT ON room_event_streams
    FOR EACH ROW EXECUTE FUNCTION roomwatch_register_account();
CREATE TRIGGER room_stats_account BEFORE INSERT ON room_stats
    FOR EACH ROW EXECUTE FUNCTION roomwatch_register_account();

-- The accounts this database already knows. Every stored event moved the stream's position in
-- its own transaction, so room_event_streams names every account of room_events.
INSERT INTO accounts (account)
SELECT account FROM login_sessions WHERE account <> 'unknown'
UNION SELECT account FROM room_event_streams
UNION SELECT account FROM room_stats
ON CONFLICT DO NOTHING;

-- Until now one install served one account: the data below was that account's. It is the
-- operator's `roomwatch.account` when set (PGOPTIONS='-c roomwatch.account=NAME'), else the one
-- account known. With none or several, and data to carry, the migration stops and says so:
-- guessing would give one account's followers to another.
CREATE TEMPORARY TABLE migration_owner ON COMMIT DROP AS
SELECT lower(NULLIF(current_setting('roomwatch.account', true), '')) AS account;

DO $$
DECLARE
    known text[] := ARRAY(SELECT account FROM accounts ORDER BY account);
    chosen text := (SELECT account FROM migration_owner);
BEGIN
    IF chosen IS NULL AND cardinality(known) = 1 THEN
        chosen := known[1];
    END IF;
    IF chosen IS NULL AND (
        EXISTS (SELECT 1 FROM persons
                WHERE following IS NOT NULL OR follower IS NOT NULL
                   OR following_checked_at IS NOT NULL OR follower_checked_at IS NOT NULL)
        OR EXISTS (SELECT 1 FROM follow_events)
        OR EXISTS (SELECT 1 FROM source_polls
                   WHERE source IN ('followed_cams', 'followers') OR source LIKE 'html_import:%')
    ) THEN
        RAISE EXCEPTION '%', CASE WHEN cardinality(known) = 0 THEN
            'the follow state stored belongs to an account this database does not name (no '
            'login session, Events or Stats data): run once with '
            'PGOPTIONS=''-c roomwatch.account=<your username>'''
        ELSE
            format('the follow state stored belongs to one of the accounts %s: run once with '
                   'PGOPTIONS=''-c roomwatch.account=<one of them>''',
                   array_to_string(known, ', '))
        END;
    END IF;
    UPDATE migration_owner SET account = chosen;
END $$;

-- A named owner that no data named yet still becomes an account.
INSERT INTO accounts (account) SELECT account FROM migration_owner WHERE account IS NOT NULL
ON CONFLICT DO NOTHING;

ALTER TABLE follow_events ADD COLUMN account text REFERENCES accounts (account);
UPDATE follow_events SET account = (SELECT account FROM migration_owner);
ALTER TABLE follow_events ALTER COLUMN account SET NOT NULL;

-- A complete check of a follow list is the account's; the Affiliate and CBHours polls are
-- nobody's (NULL). Two accounts' lists may complete at the same moment.
ALTER TABLE source_polls ADD COLUMN account text REFERENCES accounts (account);
UPDATE source_polls SET account = (SELECT account FROM migration_owner)
WHERE source IN ('followed_cams', 'followers') OR source LIKE 'html_import:%';
ALTER TABLE source_polls DROP CONSTRAINT source_polls_pkey;
ALTER TABLE source_polls ADD CONSTRAINT source_polls_key
    UNIQUE NULLS NOT DISTINCT (source, account, completed_at);

-- Follow state per account: whom each account follows, who follows it, and when each list was
-- last checked complete. A person no list of the account ever named has no row (unknown).
CREATE TABLE account_persons (
    account               text NOT NULL REFERENCES accounts (account) ON DELETE CASCADE,
    person_id             bigint NOT NULL REFERENCES persons (person_id) ON DELETE CASCADE,
    following             boolean,
    follower              boolean,
    following_checked_at  timestamptz,
    follower_checked_at   timestamptz,
    PRIMARY KEY (account, person_id)
);
-- The Follow page's counts and the list's following=/follower= filters of one account.
CREATE INDEX account_persons_following ON account_persons (account, person_id) WHERE following;
CREATE INDEX account_persons_follower ON account_persons (account, person_id) WHERE follower;
CREATE INDEX account_persons_person ON account_persons (person_id);

INSERT INTO account_persons (account, person_id, following, follower, following_checked_at,
                             follower_checked_at)
SELECT o.account, p.person_id, p.following, p.follower, p.following_checked_at,
       p.follower_checked_at
FROM persons p, migration_owner o
WHERE p.following IS NOT NULL OR p.follower IS NOT NULL
   OR p.following_checked_at IS NOT NULL OR p.follower_checked_at IS NOT NULL;

-- persons.following/follower (and their check times) become what any account knows: true
-- when one account follows (or is followed by) the person, false when every account that
-- checked says no, NULL when none checked. With one account that is the account's own state,
-- so person_summary (built from persons by its triggers, unchanged) keeps serving the list's
-- following=/follower= filters on its own columns; the persons of interest (storage/targets.py)
-- and the went-live notices read the same columns. Only this trigger writes them. The
-- statement is planned per call (EXECUTE), like the summary's triggers.
CREATE FUNCTION roomwatch_account_persons_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE $q$
    UPDATE persons p
    SET following = a.following, follower = a.follower,
        following_checked_at = a.following_checked_at,
        follower_checked_at = a.follower_checked_at
    FROM (SELECT c.person_id, bool_or(ap.following) AS following,
                 bool_or(ap.follower) AS follower,
                 max(ap.following_checked_at) AS following_checked_at,
                 max(ap.follower_checked_at) AS follower_checked_at
          FROM (SELECT DISTINCT person_id FROM changed) c
          LEFT JOIN account_persons ap ON ap.person_id = c.person_id
          GROUP BY c.person_id) a
    WHERE p.person_id = a.person_id
      AND (p.following, p.follower, p.following_checked_at, p.follower_checked_at)
          IS DISTINCT FROM
          (a.following, a.follower, a.following_checked_at, a.follower_checked_at)
    $q$;
    RETURN NULL;
END $$;
CREATE TRIGGER account_persons_inserted AFTER INSERT ON account_persons
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION roomwatch_account_persons_changed();
CREATE TRIGGER account_persons_updated AFTER UPDATE ON account_persons
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION roomwatch_account_persons_changed();
CREATE TRIGGER account_persons_deleted AFTER DELETE ON account_persons
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION roomwatch_account_persons_changed();

-- The jobs and schedules of the spiders that read one account (the logged-in lists, the
-- Events and Stats streams); other spiders' are nobody's. An old job of such a spider with no
-- owner known keeps NULL: it is history, and nothing reads its account.
ALTER TABLE crawl_jobs ADD COLUMN account text REFERENCES accounts (account);
UPDATE crawl_jobs SET account = (SELECT account FROM migration_owner)
WHERE spider IN ('followed_cams', 'followers', 'room_events', 'room_stats');
-- One queued-or-running job per spider and account (a crawl naming no account is one more):
-- two accounts' lists may be queued at once (the runner still runs one browser at a time).
DROP INDEX crawl_jobs_one_active;
CREATE UNIQUE INDEX crawl_jobs_one_active ON crawl_jobs (spider, account) NULLS NOT DISTINCT
    WHERE status IN ('queued', 'running');
ALTER TABLE schedules ADD COLUMN account text
    REFERENCES accounts (account) ON DELETE CASCADE;
UPDATE schedules SET account = (SELECT account FROM migration_owner)
WHERE spider IN ('followed_cams', 'followers', 'room_events', 'room_stats');
