"""metrics.py - what `make bench` measures of /metrics (issue 19): the
cost of being scraped once a second while under load.

One postern (the bench config plus [http] listen on 127.0.0.1:2539)
takes the same smtp-source load (20 sessions, 4 KiB messages, connection
reuse, delivered to Maildir) ROUNDS times without a scraper and ROUNDS
times with one that GETs /metrics every second (as a Prometheus with
scrape_interval 1s would), alternating which goes first.  Reported:
the medians of delivered msgs/s both ways and their ratio, the postern
CPU per message both ways, and what one scrape costs (its wall time and
size).  Speed targets belong here, not in tests: nothing asserts.
"""
import statistics
import threading
import time
import urllib.request

from run import HOST, Postern, one_round

PORT = 2540
PORT_HTTP = 2539
PORTS = (PORT, PORT_HTTP)
SCRAPES = 500
SESSIONS, SIZE = 20, 4096
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Scraper(threading.Thread):
    """GET /metrics once a second until stopped; keeps each's time."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url = url
        self.times, self.sizes = [], []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            t0 = time.monotonic()
            with _OPENER.open(self.url, timeout=10) as r:
                self.sizes.append(len(r.read()))
            self.times.append(time.monotonic() - t0)
            self.halt.wait(max(0.0, 1.0 - (time.monotonic() - t0)))

    def stop(self):
        self.halt.set()
        self.join(15)


def bucket_quantile(text, name, q):
    """The upper bound of the bucket holding quantile q of histogram
    name in an exposition (what histogram_quantile() interpolates in)."""
    buckets = []
    for line in text.splitlines():
        if line.startswith(name + "_bucket{"):
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le),
                            float(line.rsplit(" ", 1)[1])))
    total = buckets[-1][1] if buckets else 0
    for le, cum in buckets:
        if total and cum >= q * total:
            return le
    return None


def run(binary, root, rounds, messages):
    pn = Postern(binary, root, PORT)
    pn.setup()
    conf = root / "etc" / "postern.conf"
    conf.write_text(conf.read_text() +
                    f"\n[http]\nlisten = {HOST}:{PORT_HTTP}\n")
    pn.start()
    url = f"http://{HOST}:{PORT_HTTP}/metrics"
    plain, scraped, times, sizes = [], [], [], []
    try:
        for rnd in range(rounds):
            for with_scrape in ((False, True) if rnd % 2 == 0
                                else (True, False)):
                s = Scraper(url) if with_scrape else None
                if s:
                    s.start()
                r = one_round(pn, SESSIONS, SIZE, messages, True)
                if s:
                    s.stop()
                    times += s.times
                    sizes += s.sizes
                (scraped if with_scrape else plain).append(r)
        # The precise figure: postern's CPU for SCRAPES scrapes in a
        # row, idle otherwise (the load's noise is larger than 1%).
        cpu0 = pn.cpu()
        for _ in range(SCRAPES):
            with _OPENER.open(url, timeout=10) as r:
                r.read()
        cpu_scrape_ms = (pn.cpu() - cpu0) * 1000 / SCRAPES
        with _OPENER.open(url, timeout=10) as r:
            text = r.read().decode()
        quant = {h: (bucket_quantile(text, h, 0.5),
                     bucket_quantile(text, h, 0.99))
                 for h in ("postern_spool_fsync_seconds",
                           "postern_data_to_reply_seconds")}
    finally:
        pn.stop()
    med = {k: statistics.median(x["delivered"] for x in v)
           for k, v in (("plain", plain), ("scraped", scraped))}
    cpu = {k: statistics.median(x["cpu_ms"] for x in v)
           for k, v in (("plain", plain), ("scraped", scraped))}
    # One scrape a second against the CPU the load itself takes a second.
    load_cpu_ms_per_s = med["plain"] * cpu["plain"]
    return {"rounds": rounds, "messages": messages,
            "cpu_scrape_ms": cpu_scrape_ms,
            "quantiles": quant,
            "overhead": cpu_scrape_ms / load_cpu_ms_per_s,
            "spread_plain": [round(x["delivered"]) for x in plain],
            "spread_scraped": [round(x["delivered"]) for x in scraped],
            "plain": med["plain"], "scraped": med["scraped"],
            "ratio": med["scraped"] / med["plain"],
            "cpu_ms_plain": cpu["plain"], "cpu_ms_scraped": cpu["scraped"],
            "scrapes": len(times),
            "scrape_ms": statistics.median(times) * 1000 if times else 0,
            "scrape_bytes": statistics.median(sizes) if sizes else 0}


def render(r):
    return [
        "## /metrics scraped once a second under load",
        "",
        f"{r['rounds']} rounds each of {r['messages']} messages, "
        f"{SESSIONS} sessions, 4 KiB, connection reuse, into Maildir; "
        "medians.",
        "",
        "| | delivered msgs/s | postern CPU ms/msg |",
        "|---|---:|---:|",
        f"| no scraper | {r['plain']:.0f} | {r['cpu_ms_plain']:.3f} |",
        f"| GET /metrics every 1 s | {r['scraped']:.0f} | "
        f"{r['cpu_ms_scraped']:.3f} |",
        "",
        f"scraped/plain = {r['ratio']:.3f}; {r['scrapes']} scrapes, "
        f"median {r['scrape_ms']:.2f} ms and {r['scrape_bytes']:.0f} "
        "bytes each.  Rounds (msgs/s): without "
        f"{r['spread_plain']}, with {r['spread_scraped']}: the load's own "
        "spread is larger than the effect.",
        "",
        f"CPU of postern per scrape ({SCRAPES} in a row): "
        f"{r['cpu_scrape_ms']:.3f} ms; one a second = "
        f"{r['overhead'] * 100:.2f}% of the CPU postern spends per second "
        "at the unscraped rate.",
        "",
        "Latencies seen by the histograms over the whole step (the bucket "
        "holding p50 / p99): " + "; ".join(
            f"{k} <= {v[0]} s / <= {v[1]} s"
            for k, v in r["quantiles"].items()) + ".",
    ]
