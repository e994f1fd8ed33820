-- Follow durations (following_since, unfollowed_at, follower_since, lost_follower_at) are the
-- newest event of one kind for one person: max(occurred_at) for (person_id, kind). The person
-- index alone (person_id, occurred_at) walks every event of the person to find the kind; this
-- one answers with the first entry of its range, so a list page costs four index probes a row.
CREATE INDEX follow_events_person_kind ON follow_events (person_id, kind, occurred_at DESC);
