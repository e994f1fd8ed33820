-- Persons of interest of kind "room" (storage/targets.py): whoever tipped, joined the fan club
-- or bought media in the owner's room, read from room_events. Targets are read before every
-- CBHours and Affiliate crawl; this index answers them from the few events of those methods
-- rather than from every chat line and visit of a year (one index per month partition).
CREATE INDEX room_events_interest ON room_events (username)
    WHERE method IN ('tip', 'fanclubJoin', 'mediaPurchase') AND username IS NOT NULL;
