"""Interleaved A/B on one server: main's schema+writer (migrations <= 0017, no deferral) vs this branch."""
import contextlib, datetime as dt, shutil, statistics, sys, tempfile, time
from pathlib import Path
import psycopg
from psycopg import sql
import storage.writers as sw
from storage.embedded import EmbeddedPostgres
from storage.migrator import apply_migrations, bundled_migrations
from storage.writers import write_affiliate_poll, write_cbhours_live
from storage.records import CbhoursLive
from upstream_sim.affiliate.feed import AffiliateFeed, FeedQuery
from formats.affiliate import decode_page
from bench.ingest_affiliate import raw_copy

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 6
def page(feed, n): return decode_page(feed.page(FeedQuery(wm="bench", limit=n)))[0]
real = sw.deferred_summaries
def arm(name): sw.deferred_summaries = real if name == "after" else (lambda c: contextlib.nullcontext())
d = Path(tempfile.mkdtemp(prefix="ab-"))
srv = EmbeddedPostgres(d / "db")
try:
    ci = srv.start()
    with psycopg.connect(ci, autocommit=True) as a:
        for n in ("before", "after"):
            a.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(n)))
    url = {n: psycopg.conninfo.make_conninfo(ci, dbname=n) for n in ("before", "after")}
    conns = {n: psycopg.connect(u) for n, u in url.items()}
    migs = bundled_migrations()
    apply_migrations(conns["before"], [m for m in migs if m.version < 18])
    apply_migrations(conns["after"])
    print("after has", [m.filename for m in migs if m.version >= 18])
    now = dt.datetime.now(dt.UTC)
    bg = page(AffiliateFeed(30000, seed=9), 30000)
    feed = AffiliateFeed(10000, seed=3)
    states = []
    for _ in range(rounds + 2):
        states.append(page(feed, 10000)); feed.tick(seconds=60)
    for n, conn in conns.items():
        arm(n)
        write_affiliate_poll(conn, bg, observed_at=now - dt.timedelta(hours=5)); conn.commit()
        rs = states[0]
        write_cbhours_live(conn, [CbhoursLive(username=x.username, room_status="Online", current_show="public", viewers=x.num_users, followers=x.num_followers, tags=x.tags, rank=i+1, grank=i+1, raw=b"{}") for i, x in enumerate(rs[:5000])], observed_at=now - dt.timedelta(minutes=3)); conn.commit()
        for i in range(2):
            write_affiliate_poll(conn, states[i], observed_at=now - dt.timedelta(minutes=2, seconds=-10*i), complete=True); conn.commit()
        conn.autocommit = True; conn.execute("VACUUM ANALYZE"); conn.autocommit = False
    c = conns["after"]
    c.execute("CREATE TABLE raw_copy_target (LIKE affiliate_api_snapshots INCLUDING ALL)"); c.commit()
    T = {"before": [], "after": [], "copy": []}
    for r in range(rounds):
        rs = states[2 + r]
        at = dt.datetime.now(dt.UTC)
        order = ["copy", "before", "after"] if r % 2 == 0 else ["after", "before", "copy"]
        for step in order:
            s = time.perf_counter()
            if step == "copy":
                raw_copy(c, rs, at)
            else:
                arm(step); write_affiliate_poll(conns[step], rs, observed_at=at, complete=True); conns[step].commit()
            T[step].append(time.perf_counter() - s)
    m = {k: statistics.median(v) for k, v in T.items()}
    print(f"rounds {rounds}: raw COPY {m['copy']*1000:.0f} ms; before {m['before']*1000:.0f} ms ({m['copy']/m['before']:.2f}x COPY); after {m['after']*1000:.0f} ms ({m['copy']/m['after']:.2f}x COPY)")
    for k, v in T.items(): print(k, [round(x*1000) for x in v])
finally:
    srv.stop(); shutil.rmtree(d, ignore_errors=True)
