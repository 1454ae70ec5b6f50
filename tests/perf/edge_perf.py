"""Measures what the TLS edge adds, on loopback inside an edge host, against the inference
server TEST DOUBLE directly, at the same concurrency, in one run (docs/performance.md):

  1. small, instant calls (GET /v1/models): added p50/p99 latency and the req/s ratio (wrk);
  2. a realistic service (20-50 ms per answer, POST /v1/chat/completions): the req/s ratio (wrk);
  3. streaming: time to the first SSE chunk, through the edge and direct (keep-alive connections).

    python3 edge_perf.py --key KEY [--port 8100] [--seconds 10] [--json OUT]

The edge must have the double's port as its only upstream and limits above the load (scripts/
edge_perf.sh sets that up). Prints a markdown table; --json writes the figures.
"""
import argparse
import http.client
import json
import re
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

DOUBLE = "/usr/local/bin/llmfleet-test-inference-double"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def wrk(url, key, seconds, connections, lua):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    cmd = ["wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds, "--latency", "-s", script.name]
    if key:
        cmd += ["-H", "Authorization: Bearer " + key]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    pct = {p: float(v) * UNITS[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        sys.exit("wrk got %s non-2xx answers from %s (limits too low?)\n%s" % (non2xx.group(1), url, out))
    return {"p50_ms": pct["50"], "p99_ms": pct["99"], "rps": rps}


def ttfb(make_conn, key, runs):
    """Time from sending a streaming request to the first SSE chunk, on one keep-alive connection."""
    conn = make_conn()
    body = json.dumps({"stream": True, "messages": [],
                       "llmfleet_test": {"chunks": 2, "first_delay_ms": 20, "interval_ms": 1}})
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + key
    samples = []
    for _attempt in range(runs):
        start = time.perf_counter()
        conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
        resp = conn.getresponse()
        while not resp.readline().startswith(b"data: {"):
            pass
        samples.append((time.perf_counter() - start) * 1000.0)
        resp.read()
    conn.close()
    samples.sort()
    return {"p50_ms": statistics.median(samples), "p90_ms": samples[int(len(samples) * 0.9) - 1]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--key", required=True)
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    double = subprocess.Popen([sys.executable, DOUBLE, "--port", str(args.port)])
    time.sleep(1)
    direct = "http://127.0.0.1:%d" % args.port
    edge = "https://127.0.0.1:443"
    small = 'wrk.method = "GET"\n'
    realistic = ('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                 'wrk.body = \'{"messages": [], "llmfleet_test": {"delay_ms": 20, "delay_max_ms": 50}}\'\n')
    try:
        res = {
            "small_direct": wrk(direct + "/v1/models", None, args.seconds, 2, small),
            "small_edge": wrk(edge + "/v1/models", args.key, args.seconds, 2, small),
            "real_direct": wrk(direct + "/v1/chat/completions", None, args.seconds, 16, realistic),
            "real_edge": wrk(edge + "/v1/chat/completions", args.key, args.seconds, 16, realistic),
            "ttfb_direct": ttfb(lambda: http.client.HTTPConnection("127.0.0.1", args.port, timeout=10), None, 200),
            "ttfb_edge": ttfb(lambda: http.client.HTTPSConnection(
                "127.0.0.1", 443, timeout=10, context=ssl._create_unverified_context()), args.key, 200),
        }
    finally:
        double.terminate()
    res["small_added_p50_ms"] = res["small_edge"]["p50_ms"] - res["small_direct"]["p50_ms"]
    res["small_added_p99_ms"] = res["small_edge"]["p99_ms"] - res["small_direct"]["p99_ms"]
    res["small_rps_ratio"] = res["small_edge"]["rps"] / res["small_direct"]["rps"]
    res["real_rps_ratio"] = res["real_edge"]["rps"] / res["real_direct"]["rps"]
    res["ttfb_added_p50_ms"] = res["ttfb_edge"]["p50_ms"] - res["ttfb_direct"]["p50_ms"]
    print("| measure | direct | through the edge | edge adds / ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    print("| small calls, 2 connections: p50 | %.3f ms | %.3f ms | +%.3f ms | |" % (
        res["small_direct"]["p50_ms"], res["small_edge"]["p50_ms"], res["small_added_p50_ms"]))
    print("| small calls: p99 | %.3f ms | %.3f ms | +%.3f ms | <= 1 ms |" % (
        res["small_direct"]["p99_ms"], res["small_edge"]["p99_ms"], res["small_added_p99_ms"]))
    print("| small calls: req/s | %.0f | %.0f | %.2f | |" % (
        res["small_direct"]["rps"], res["small_edge"]["rps"], res["small_rps_ratio"]))
    print("| 20-50 ms service, 16 connections: req/s | %.1f | %.1f | %.3f | >= 0.95 |" % (
        res["real_direct"]["rps"], res["real_edge"]["rps"], res["real_rps_ratio"]))
    print("| first SSE chunk (20 ms service), p50 | %.3f ms | %.3f ms | +%.3f ms | <= 2 ms |" % (
        res["ttfb_direct"]["p50_ms"], res["ttfb_edge"]["p50_ms"], res["ttfb_added_p50_ms"]))
    print("| first SSE chunk, p90 | %.3f ms | %.3f ms | +%.3f ms | |" % (
        res["ttfb_direct"]["p90_ms"], res["ttfb_edge"]["p90_ms"],
        res["ttfb_edge"]["p90_ms"] - res["ttfb_direct"]["p90_ms"]))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(res, out, indent=2)


if __name__ == "__main__":
    main()
