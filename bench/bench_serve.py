#!/usr/bin/env python3
"""Driver for bench/bench_serve.sh: makes warm sandboxes, and measures full cycles.

    bench_serve.py sandboxes --url URL --key KEY -n 16     # prints their ids, comma-separated
    bench_serve.py cycles --url URL --key KEY --threads 8 --seconds 10
        # create + execute print(1) + delete, repeated by each thread on its own connection;
        # prints "BENCH cycles=N seconds=S cps=X p50_ms=... p99_ms=... errors=E"
"""
import argparse
import http.client
import json
import threading
import time
import urllib.parse


def conn(url):
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=60)


def call(c, key, method, path, body=None, accept=None):
    h = {"Authorization": "Bearer " + key}
    if body is not None:
        h["Content-Type"] = "application/json"
        body = json.dumps(body)
    if accept:
        h["Accept"] = accept
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    return r.status, r.read()


def sandboxes(a):
    c = conn(a.url)
    ids = []
    for _ in range(a.n):
        st, body = call(c, a.key, "POST", "/v1/sandboxes", {})
        assert st == 201, (st, body)
        sid = json.loads(body)["id"]
        st, body = call(c, a.key, "POST", "/v1/sandboxes/%s/execute" % sid,
                        {"code": "print(0)"}, "application/json")
        assert st == 200, (st, body)
        ids.append(sid)
    print(",".join(ids))


def cycles(a):
    stop = time.monotonic() + a.seconds
    lat, errors, lock = [], [0], threading.Lock()

    def worker():
        c = conn(a.url)
        mine = []
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            try:
                st, body = call(c, a.key, "POST", "/v1/sandboxes", {})
                if st != 201:
                    raise RuntimeError(st)
                sid = json.loads(body)["id"]
                st, body = call(c, a.key, "POST", "/v1/sandboxes/%s/execute" % sid,
                                {"code": "print(1)"}, "application/json")
                ok = st == 200 and json.loads(body)["stdout"] == "1\n"
                st2, _ = call(c, a.key, "DELETE", "/v1/sandboxes/" + sid)
                if not ok or st2 != 204:
                    raise RuntimeError(st)
                mine.append(time.perf_counter() - t0)
            except Exception:  # counted, and the connection is renewed
                with lock:
                    errors[0] += 1
                c.close()
                c = conn(a.url)
        with lock:
            lat.extend(mine)

    t0 = time.monotonic()
    ts = [threading.Thread(target=worker) for _ in range(a.threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.monotonic() - t0
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else 0
    print("BENCH cycles=%d seconds=%.2f cps=%.1f p50_ms=%.2f p99_ms=%.2f errors=%d"
          % (len(lat), dt, len(lat) / dt, pct(0.5), pct(0.99), errors[0]))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["sandboxes", "cycles"])
    p.add_argument("--url", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("-n", type=int, default=16)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10)
    a = p.parse_args()
    sandboxes(a) if a.what == "sandboxes" else cycles(a)


if __name__ == "__main__":
    main()
