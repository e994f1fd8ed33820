-- Rows rewritten on every poll (last seen online, latest values) leave room in each
-- page so PostgreSQL can update them in place (HOT) instead of touching every index.
ALTER TABLE persons SET (fillfactor = 80);
ALTER TABLE person_source_latest SET (fillfactor = 70);
