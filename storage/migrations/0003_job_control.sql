-- Crawl job control: cancellation requests and progress heartbeats from the crawl process.
ALTER TABLE crawl_jobs
    ADD COLUMN cancel_requested_at timestamptz,
    ADD COLUMN heartbeat_at timestamptz;
CREATE INDEX crawl_jobs_active ON crawl_jobs (status) WHERE status IN ('queued', 'running');
