-- The Follow page counts both lists on every view: count(*) over persons WHERE following (or
-- follower) read all 100,000 rows; these partial indexes hold only the persons on a list, so
-- the count reads as many entries as the list is long. Neither column moves with the polls
-- (their updates of last_seen_online_at stay HOT).
CREATE INDEX persons_following ON persons (person_id) WHERE following;
CREATE INDEX persons_follower ON persons (person_id) WHERE follower;
