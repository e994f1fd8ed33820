-- Finished crawl jobs are deleted after database.job_retention_days (storage/maintenance.py).
-- Each deleted job's references are set NULL by their foreign keys, one look-up per job and
-- table: without these indexes that look-up scans the whole table, once per job (a first run
-- on an install that has polled for a year deletes hundreds of thousands of jobs).
CREATE INDEX source_polls_job ON source_polls (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX follow_events_job ON follow_events (job_id) WHERE job_id IS NOT NULL;
