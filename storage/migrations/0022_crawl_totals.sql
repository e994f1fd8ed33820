-- Crawl totals for GET /metrics (storage/metrics.py): what every finished crawl job counted,
-- summed per spider, so a scrape reads a few hundred rows instead of the stats of every job
-- ever run (crawl_jobs is never pruned: a year of 5-minute schedules is 100,000s of rows).
-- The figures of queued and running jobs are read from their rows at scrape time and added.
--
-- Kept by the triggers below in the transaction that finishes a job, whichever process or
-- machine finishes it: a job's stats move from "running" into the totals atomically, so the
-- sums only ever grow (Prometheus counters). A row changed after it was final (its stats, its
-- status) takes its old figures out and puts its new ones in; deleting a job row leaves the
-- totals alone (a counter does not go back).

-- Finished jobs per spider and final status.
CREATE TABLE crawl_job_totals (
    spider  text NOT NULL,
    status  text NOT NULL,
    jobs    bigint NOT NULL,
    PRIMARY KEY (spider, status)
);

-- Every numeric Scrapy stat of the finished jobs, summed per spider (which of them /metrics
-- serves, and under what name, is decided in control_api/metrics.py).
CREATE TABLE crawl_stat_totals (
    spider  text NOT NULL,
    stat    text NOT NULL,
    value   double precision NOT NULL,
    PRIMARY KEY (spider, stat)
);

CREATE FUNCTION roomwatch_crawl_totals_add(p_spider text, p_status text, p_stats jsonb,
                                           p_sign integer) RETURNS void LANGUAGE sql AS $$
    INSERT INTO crawl_job_totals AS t (spider, status, jobs) VALUES (p_spider, p_status, p_sign)
    ON CONFLICT (spider, status) DO UPDATE SET jobs = t.jobs + EXCLUDED.jobs;
    -- In key order: two transactions adding to one spider lock its rows in the same order.
    INSERT INTO crawl_stat_totals AS t (spider, stat, value)
    SELECT p_spider, key, p_sign * value::double precision FROM jsonb_each(p_stats)
    WHERE jsonb_typeof(value) = 'number' ORDER BY key
    ON CONFLICT (spider, stat) DO UPDATE SET value = t.value + EXCLUDED.value;
$$;

CREATE FUNCTION roomwatch_crawl_totals_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status NOT IN ('queued', 'running') THEN
        PERFORM roomwatch_crawl_totals_add(OLD.spider, OLD.status, OLD.stats, -1);
    END IF;
    IF NEW.status NOT IN ('queued', 'running') THEN
        PERFORM roomwatch_crawl_totals_add(NEW.spider, NEW.status, NEW.stats, 1);
    END IF;
    RETURN NULL;
END $$;

-- No job may finish between the sums below and the triggers: it would be counted by neither.
LOCK TABLE crawl_jobs IN SHARE ROW EXCLUSIVE MODE;

INSERT INTO crawl_job_totals (spider, status, jobs)
SELECT spider, status, count(*) FROM crawl_jobs
WHERE status NOT IN ('queued', 'running') GROUP BY spider, status;

INSERT INTO crawl_stat_totals (spider, stat, value)
SELECT j.spider, e.key, sum(e.value::double precision)
FROM crawl_jobs j CROSS JOIN LATERAL jsonb_each(j.stats) e
WHERE j.status NOT IN ('queued', 'running') AND jsonb_typeof(e.value) = 'number'
GROUP BY j.spider, e.key;

-- Progress updates of running jobs (every second) fire neither.
CREATE TRIGGER crawl_jobs_totals_insert AFTER INSERT ON crawl_jobs
    FOR EACH ROW WHEN (NEW.status NOT IN ('queued', 'running'))
    EXECUTE FUNCTION roomwatch_crawl_totals_count();
CREATE TRIGGER crawl_jobs_totals_update AFTER UPDATE OF spider, status, stats ON crawl_jobs
    FOR EACH ROW WHEN (OLD.status NOT IN ('queued', 'running')
                       OR NEW.status NOT IN ('queued', 'running'))
    EXECUTE FUNCTION roomwatch_crawl_totals_count();
