-- The agent runtime: what the scheduling agent publishes about each schedule, a wake-up call for
-- crawl workers, and which alerts have already been sent.

-- Written by the agent that holds the scheduler lock: when each schedule fires next (NULL while
-- paused or while no agent schedules) and when it last fired, so that a restarted agent resumes
-- the rhythm instead of starting every interval from scratch.
ALTER TABLE schedules
    ADD COLUMN next_run_at   timestamptz,
    ADD COLUMN last_fired_at timestamptz,
    ADD COLUMN last_job_id   bigint REFERENCES crawl_jobs (job_id) ON DELETE SET NULL;

-- Every queued job wakes the workers of every agent on this database (LISTEN roomwatch_jobs);
-- they also poll, so a lost notification only delays a job by a second.
CREATE FUNCTION roomwatch_notify_job_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('roomwatch_jobs', NEW.job_id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER crawl_jobs_queued AFTER INSERT ON crawl_jobs
    FOR EACH ROW EXECUTE FUNCTION roomwatch_notify_job_queued();

-- GET /crawls?status=...: newest first within a status.
CREATE INDEX crawl_jobs_status_recent ON crawl_jobs (status, job_id DESC);

-- One row per alert already sent to the webhook: the key names the alert and its occurrence
-- (for example the first failed job of a streak), so a restart or a second agent sends nothing
-- twice.
CREATE TABLE alert_notifications (
    alert_key    text PRIMARY KEY,
    notified_at  timestamptz NOT NULL DEFAULT now()
);
