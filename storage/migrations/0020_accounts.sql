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
        EXISTS (SELECT 1 FROM persons WHERE following IS NOT NULL OR follower IS NOT NULL)
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
-- nobody's (NULL).
ALTER TABLE source_polls ADD COLUMN account text REFERENCES accounts (account);
UPDATE source_polls SET account = (SELECT account FROM migration_owner)
WHERE source IN ('followed_cams', 'followers') OR source LIKE 'html_import:%';

-- The jobs and schedules of the spiders that read one account (the logged-in lists, the
-- Events and Stats streams); other spiders' are nobody's. An old job of such a spider with no
-- owner known keeps NULL: it is history, and nothing reads its account.
ALTER TABLE crawl_jobs ADD COLUMN account text REFERENCES accounts (account);
UPDATE crawl_jobs SET account = (SELECT account FROM migration_owner)
WHERE spider IN ('followed_cams', 'followers', 'room_events', 'room_stats');
ALTER TABLE schedules ADD COLUMN account text
    REFERENCES accounts (account) ON DELETE CASCADE;
UPDATE schedules SET account = (SELECT account FROM migration_owner)
WHERE spider IN ('followed_cams', 'followers', 'room_events', 'room_stats');
