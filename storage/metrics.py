"""The figures ``GET /metrics`` reads from the database: crawl totals, sessions, counts, sizes
and the event streams' lag, in one statement under a short time limit.

Crawl figures come from the job rows, never from the process that serves the scrape, so they
are right whichever machine ran the crawl: finished jobs from the totals their triggers keep
(migration 0022), queued and running ones from their rows' live stats, added together.
"""

from __future__ import annotations

from typing import Any

import msgspec
from psycopg import AsyncConnection

ACTIVE = "('queued', 'running')"

# One row, one JSON document: each part is an array of arrays (decoded by position).
FIGURES = f"""
SELECT jsonb_build_object(
  'jobs', (SELECT coalesce(jsonb_agg(jsonb_build_array(spider, account, status, jobs)), '[]')
           FROM (SELECT spider, account, status, jobs FROM crawl_job_totals WHERE jobs <> 0
                 UNION ALL
                 SELECT spider, coalesce(account, ''), status, count(*) FROM crawl_jobs
                 WHERE status IN {ACTIVE} GROUP BY 1, 2, 3) j),
  'stats', (SELECT coalesce(jsonb_agg(jsonb_build_array(spider, stat, value)), '[]')
            FROM (SELECT spider, stat, sum(value) AS value
                  FROM (SELECT spider, stat, value FROM crawl_stat_totals
                        UNION ALL
                        SELECT j.spider, e.key, e.value::double precision
                        FROM crawl_jobs j CROSS JOIN LATERAL jsonb_each(j.stats) e
                        WHERE j.status IN {ACTIVE} AND jsonb_typeof(e.value) = 'number') t
                  GROUP BY spider, stat) s),
  'sessions', (SELECT coalesce(jsonb_agg(jsonb_build_array(account, status, n)), '[]')
               FROM (SELECT account, status, count(*) AS n FROM login_sessions
                     GROUP BY account, status) s),
  'persons', (SELECT jsonb_build_array(count(*), count(*) FILTER (WHERE watch)) FROM persons),
  'tables', (SELECT coalesce(jsonb_agg(jsonb_build_array(name, n)), '[]')
             FROM (SELECT coalesce(pg_partition_root(relid), relid)::regclass::text AS name,
                          sum(n_live_tup) AS n
                   FROM pg_stat_user_tables WHERE schemaname = current_schema()
                   GROUP BY 1) t),
  'database_bytes', pg_database_size(current_database()),
  'streams', (SELECT coalesce(jsonb_agg(jsonb_build_array(s.account,
                                extract(epoch FROM statement_timestamp() - e.newest))), '[]')
              FROM room_event_streams s CROSS JOIN LATERAL
                   (SELECT max(occurred_at) AS newest FROM room_events r
                    WHERE r.account = s.account) e
              WHERE e.newest IS NOT NULL)
)::text
"""


class JobCount(msgspec.Struct, frozen=True, array_like=True):
    """Jobs of one spider and account in one status (final statuses: every job ever finished
    so). ``account`` is empty for the spiders that read no account's data (migration 0026)."""

    spider: str
    account: str
    status: str
    jobs: int


class CrawlStat(msgspec.Struct, frozen=True, array_like=True):
    """One numeric Scrapy stat summed over every job of a spider (finished and running)."""

    spider: str
    stat: str
    value: float


class SessionCount(msgspec.Struct, frozen=True, array_like=True):
    """Login sessions of one account in one status (valid, expired, unknown)."""

    account: str
    status: str
    sessions: int


class PersonCounts(msgspec.Struct, frozen=True, array_like=True):
    """Exact counts: one pass over ``persons`` (5 to 8 ms at 100,000 persons)."""

    persons: int
    watched: int


class TableRows(msgspec.Struct, frozen=True, array_like=True):
    """PostgreSQL's estimate of a table's live rows (``n_live_tup``), partitions summed into
    their table: counting the history tables exactly would read them whole."""

    table: str
    rows: int


class StreamLag(msgspec.Struct, frozen=True, array_like=True):
    """Seconds since the newest stored event of an account's Events API stream."""

    account: str
    seconds: float


class Figures(msgspec.Struct, frozen=True):
    """Everything one scrape reads from the database."""

    jobs: list[JobCount]
    stats: list[CrawlStat]
    sessions: list[SessionCount]
    persons: PersonCounts
    tables: list[TableRows]
    database_bytes: int
    streams: list[StreamLag]


_decoder = msgspec.json.Decoder(Figures)


async def read_figures(conn: AsyncConnection[Any], timeout_seconds: float) -> Figures:
    """The figures, read in one statement that the server cancels after ``timeout_seconds``.

    Raises:
        psycopg.errors.QueryCanceled: the statement ran out of time (or waited that long for a
            lock), so a slow database cannot hang a scrape.
    """
    async with conn.transaction():
        await conn.execute(
            "SELECT set_config('statement_timeout', %s, true)",
            [f"{max(1, round(timeout_seconds * 1000))}ms"],
        )
        cur = await conn.execute(FIGURES)
        row = await cur.fetchone()
    assert row is not None  # a SELECT without FROM returns one row
    return _decoder.decode(row[0])
