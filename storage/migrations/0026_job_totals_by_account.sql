-- Crawl job totals per account too (GET /metrics: roomwatch_crawl_jobs_finished and
-- roomwatch_crawl_jobs_active get an `account` label): with several accounts, "followers
-- failed" says nothing until it says whose. A job of no account (affiliate, CBHours) counts
-- under the account ''. The Scrapy stat totals stay per spider.
--
-- The counters never go back: the finished jobs already counted are split by the accounts of
-- their rows, and whatever the rows no longer explain (a job row deleted since) stays under ''.

-- No job may finish between the split below and the new triggers.
LOCK TABLE crawl_jobs IN SHARE ROW EXCLUSIVE MODE;

ALTER TABLE crawl_job_totals ADD COLUMN account text NOT NULL DEFAULT '';
ALTER TABLE crawl_job_totals DROP CONSTRAINT crawl_job_totals_pkey,
    ADD PRIMARY KEY (spider, account, status);

WITH per_account AS (
    SELECT spider, account, status, count(*) AS jobs FROM crawl_jobs
    WHERE account IS NOT NULL AND status NOT IN ('queued', 'running')
    GROUP BY spider, account, status
), moved AS (
    UPDATE crawl_job_totals t SET jobs = t.jobs - m.jobs
    FROM (SELECT spider, status, sum(jobs) AS jobs FROM per_account GROUP BY spider, status) m
    WHERE t.spider = m.spider AND t.status = m.status AND t.account = ''
)
INSERT INTO crawl_job_totals (spider, account, status, jobs)
SELECT spider, account, status, jobs FROM per_account;

DROP TRIGGER crawl_jobs_totals_insert ON crawl_jobs;
DROP TRIGGER crawl_jobs_totals_update ON crawl_jobs;
DROP FUNCTION roomwatch_crawl_totals_count();
DROP FUNCTION roomwatch_crawl_totals_add(text, text, jsonb, integer);

CREATE FUNCTION roomwatch_crawl_totals_add(p_spider text, p_account text, p_status text,
                                           p_stats jsonb, p_sign integer) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO crawl_job_totals AS t (spider, account, status, jobs)
    VALUES (p_spider, coalesce(p_account, ''), p_status, p_sign)
    ON CONFLICT (spider, account, status) DO UPDATE SET jobs = t.jobs + EXCLUDED.jobs;
    -- In key order: two transactions adding to one spider lock its rows in the same order.
    INSERT INTO crawl_stat_totals AS t (spider, stat, value)
    SELECT p_spider, key, p_sign * value::double precision FROM jsonb_each(p_stats)
    WHERE jsonb_typeof(value) = 'number' ORDER BY key
    ON CONFLICT (spider, stat) DO UPDATE SET value = t.value + EXCLUDED.value;
$$;

CREATE FUNCTION roomwatch_crawl_totals_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status NOT IN ('queued', 'running') THEN
        PERFORM roomwatch_crawl_totals_add(OLD.spider, OLD.account, OLD.status, OLD.stats, -1);
    END IF;
    IF NEW.status NOT IN ('queued', 'running') THEN
        PERFORM roomwatch_crawl_totals_add(NEW.spider, NEW.account, NEW.status, NEW.stats, 1);
    END IF;
    RETURN NULL;
END $$;

-- Progress updates of running jobs (every second) fire neither.
CREATE TRIGGER crawl_jobs_totals_insert AFTER INSERT ON crawl_jobs
    FOR EACH ROW WHEN (NEW.status NOT IN ('queued', 'running'))
    EXECUTE FUNCTION roomwatch_crawl_totals_count();
CREATE TRIGGER crawl_jobs_totals_update AFTER UPDATE OF spider, account, status, stats ON crawl_jobs
    FOR EACH ROW WHEN (OLD.status NOT IN ('queued', 'running')
                       OR NEW.status NOT IN ('queued', 'running'))
    EXECUTE FUNCTION roomwatch_crawl_totals_count();
