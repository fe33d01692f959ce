#!/usr/bin/python3
"""Scripted model server for tests: OpenAI- and Anthropic-compatible, loopback only.

    /usr/bin/python3 tests/mock/model_server.py --script steps.json --log requests.jsonl [--port 0]
        [--delay-ms N] [--cache-min-tokens 1024]

Binds 127.0.0.1 only, prints the chosen port as the first line of stdout (flushed), then serves

    POST /v1/chat/completions   (OpenAI Chat Completions; any path ending in /chat/completions)
    POST /v1/messages           (Anthropic Messages; any path ending in /messages)

by replaying the script's steps in order, one step per request whatever the path.  When the
script runs out, every further request gets HTTP 500 with an error body saying so, so a test that
makes too many calls notices.  SIGTERM (or SIGINT) ends the server cleanly with exit status 0.

Script: a JSON array of steps, or {"steps": [...]}.  A step is an object:

    "status":    HTTP status (default 200)
    "headers":   {"Name": "value", ...} extra response headers (e.g. "Retry-After": "1")
    "delay_ms":  sleep this long before answering (the client may time out meanwhile)
    "drop":      true: close the connection without any response
    "expect_path": "/v1/messages": answer 500 "script expected ..." if the request went elsewhere

and exactly one body source:

    "body":      any JSON value, sent as application/json
    "raw":       text sent as-is (application/json content type unless "content_type" is given);
                 with "repeat": N the text is sent N times (oversized replies)
    "openai":    a well-formed Chat Completions reply built from
                 {"text": "...", "tool_calls": [{"id"?, "name", "arguments": {...}
                  | "arguments_raw": "text sent verbatim"}], "finish_reason"?, "refusal"?,
                  "model"?, "usage": {"prompt_tokens", "completion_tokens",
                  "prompt_tokens_details": {"cached_tokens"}, ...} (as the real API reports)}
                 finish_reason defaults to "tool_calls" when there are calls, else "stop".
    "anthropic": a well-formed Messages reply built from
                 {"text": "...", "tool_calls": [{"id"?, "name", "input": {...}
                  | "arguments": {...} | "arguments_raw": "text sent as a JSON string
                  input, which the real API never does"}], "stop_reason"?, "model"?, "usage": {"input_tokens",
                  "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"}}
                 stop_reason defaults to "tool_use" when there are calls, else "end_turn".
    "error":     {"message", "type"?, "code"?} shaped as the endpoint's API does it:
                 OpenAI {"error": {...}}, Anthropic {"type": "error", "error": {...}}
                 (use with "status").
    (none)       an empty body.

Usage "auto" (in an "openai" or "anthropic" step: "usage": "auto") makes the server count the
tokens itself, the way the real APIs account for them, so a client's prompt caching can be
measured rather than asserted.  A token is estimated as 4 bytes of UTF-8 (JSON text of each
block / of the request).
    Anthropic: the prompt is the sequence of blocks tools -> system -> message content blocks.
    A block carrying "cache_control" (or the last block, with a top-level "cache_control") is a
    breakpoint; more than 4 breakpoints -> HTTP 400, as the API does.  A request writes a cache
    entry at each breakpoint whose prefix has at least --cache-min-tokens tokens; it reads the
    longest cached prefix ending at a breakpoint or up to 20 blocks before one (the API's
    lookback).  Reported: cache_read_input_tokens = that prefix, cache_creation_input_tokens =
    from there to the last breakpoint, input_tokens = the rest (after the last breakpoint).  The
    cache key includes the model; entries never expire within a run.
    OpenAI: prompt_tokens = the request body; cached_tokens = the longest byte prefix shared
    with an earlier request body, counted only from 1024 tokens on and in steps of 128 tokens
    (the automatic prefix cache).
    Both: completion tokens = the reply's text and tool arguments.
--delay-ms N waits N ms before answering every request (a model's thinking time, for
benchmarks); a step's own delay_ms adds to it.

Log: one JSON line per request received, appended and flushed before the answer:
    {"seq": 1, "t": <unix time, float>, "method": "POST", "path": "/v1/messages",
     "headers": {lower-case name: value, ...}, "has_key": true, "step": 0,
     "body": <parsed JSON> | "body_raw": "<text, when not JSON>"}
Headers are logged as received (fake keys only: this server is for tests); "has_key" says
whether an Authorization or x-api-key header was present.  With usage "auto" the record also
has "usage": the counts sent back (in the endpoint's own field names).
"""
import argparse
import hashlib
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self, steps, log_path, delay_ms=0, cache_min_tokens=1024):
        self.steps = steps
        self.next = 0
        self.seq = 0
        self.lock = threading.Lock()
        self.log = open(log_path, "a", encoding="utf-8")
        self.delay_ms = delay_ms
        self.cache_min = cache_min_tokens
        self.anthropic_cache = set()   # prefix hashes written at breakpoints
        self.openai_bodies = []        # earlier request bodies (bytes), for the prefix cache

    def take(self):
        """Atomically assign the next step (and a sequence number) to one request."""
        with self.lock:
            self.seq += 1
            if self.next < len(self.steps):
                i = self.next
                self.next += 1
                return self.seq, i, self.steps[i]
            return self.seq, None, None

    def write_log(self, rec):
        with self.lock:
            self.log.write(json.dumps(rec, ensure_ascii=False) + "\n")
            self.log.flush()


def openai_reply(spec):
    msg = {"role": "assistant", "content": spec.get("text"), "refusal": spec.get("refusal")}
    calls = []
    for i, c in enumerate(spec.get("tool_calls", [])):
        if "arguments_raw" in c:
            args = c["arguments_raw"]
        else:
            args = json.dumps(c.get("arguments", {}), separators=(",", ":"))
        calls.append({"id": c.get("id", "call_%d" % (i + 1)), "type": "function",
                      "function": {"name": c["name"], "arguments": args}})
    if calls:
        msg["tool_calls"] = calls
    finish = spec.get("finish_reason", "tool_calls" if calls else "stop")
    body = {"id": "chatcmpl-mock", "object": "chat.completion", "created": 1763700000,
            "model": spec.get("model", "mock-model"),
            "choices": [{"index": 0, "message": msg, "finish_reason": finish}]}
    if "usage" in spec:
        body["usage"] = spec["usage"]
    return body


def anthropic_reply(spec):
    content = []
    if spec.get("text"):
        content.append({"type": "text", "text": spec["text"]})
    calls = spec.get("tool_calls", [])
    for i, c in enumerate(calls):
        if "arguments_raw" in c:  # not what the real API sends: exercises bad `input`
            inp = c["arguments_raw"]
        else:
            inp = c.get("input", c.get("arguments", {}))
        content.append({"type": "tool_use", "id": c.get("id", "toolu_%02d" % (i + 1)),
                        "name": c["name"], "input": inp})
    stop = spec.get("stop_reason", "tool_use" if calls else "end_turn")
    body = {"id": "msg_mock", "type": "message", "role": "assistant",
            "model": spec.get("model", "mock-model"), "content": content,
            "stop_reason": stop, "stop_sequence": None}
    if "usage" in spec:
        body["usage"] = spec["usage"]
    return body


# ------------------------------------------------------------------ token accounting ("auto")

def tokens(data):
    """Estimated tokens of a text or JSON value: 4 bytes of UTF-8 per token, rounded up."""
    if not isinstance(data, (bytes, str)):
        data = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    return (len(data) + 3) // 4


class CacheError(Exception):
    pass


def _strip(block):
    if isinstance(block, dict):
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


def anthropic_blocks(body):
    """[(block, is_breakpoint)] in the API's prefix order: tools, system, messages."""
    out = []
    for t in body.get("tools") or []:
        out.append(({"tool": _strip(t)}, isinstance(t, dict) and "cache_control" in t))
    system = body.get("system")
    if isinstance(system, str):
        out.append(({"system": system}, False))
    elif isinstance(system, list):
        for b in system:
            out.append(({"system": _strip(b)}, isinstance(b, dict) and "cache_control" in b))
    for m in body.get("messages") or []:
        content = m.get("content")
        if isinstance(content, str):
            out.append(({"role": m.get("role"), "block": content}, False))
        else:
            for b in content or []:
                out.append(({"role": m.get("role"), "block": _strip(b)},
                            isinstance(b, dict) and "cache_control" in b))
    if body.get("cache_control") and out:  # automatic mode: the last block
        out[-1] = (out[-1][0], True)
    return out


def anthropic_usage(state, body, output):
    blocks = anthropic_blocks(body)
    bps = [i for i, (_, bp) in enumerate(blocks) if bp]
    if len(bps) > 4:
        raise CacheError("A maximum of 4 blocks with cache_control may be provided. Found %d."
                         % len(bps))
    h = hashlib.sha256(str(body.get("model")).encode())
    hashes, cum, total = [], [], 0
    for b, _ in blocks:
        h.update(json.dumps(b, sort_keys=True, separators=(",", ":")).encode())
        hashes.append(h.copy().hexdigest())
        total += tokens(b)
        cum.append(total)
    with state.lock:
        read_upto = -1
        for b in bps:
            for j in range(b, max(-1, b - 20), -1):
                if hashes[j] in state.anthropic_cache:
                    read_upto = max(read_upto, j)
                    break
        cache_read = cum[read_upto] if read_upto >= 0 else 0
        written = [b for b in bps if cum[b] >= state.cache_min]
        for b in written:
            state.anthropic_cache.add(hashes[b])
    last = max(written) if written else -1
    creation = cum[last] - cache_read if last > read_upto else 0
    return {"input_tokens": total - cache_read - creation,
            "cache_creation_input_tokens": creation,
            "cache_read_input_tokens": cache_read, "output_tokens": output}


def openai_usage(state, raw, output):
    with state.lock:
        best = 0
        for old in state.openai_bodies:
            n = min(len(old), len(raw))
            k = 0
            while k < n and old[k] == raw[k]:  # longest common byte prefix
                k += 1
            best = max(best, k)
        state.openai_bodies.append(raw)
    prompt = tokens(raw)
    shared = best // 4
    cached = 0 if shared < 1024 else 1024 + (shared - 1024) // 128 * 128
    return {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output,
            "prompt_tokens_details": {"cached_tokens": min(cached, prompt)}}


def reply_tokens(spec):
    parts = [spec.get("text") or ""]
    for c in spec.get("tool_calls", []):
        parts.append(c.get("arguments_raw") or json.dumps(
            c.get("input", c.get("arguments", {})), separators=(",", ":")))
    return tokens("".join(parts))


def error_body(path, e):
    inner = {"message": e.get("message", "error"), "type": e.get("type", "api_error")}
    if "code" in e:
        inner["code"] = e["code"]
    if path.endswith("/messages"):
        return {"type": "error", "error": inner, "request_id": "req_mock"}
    return {"error": inner}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "corral-mock-model/1"

    def log_message(self, fmt, *args):  # quiet: the JSON log is the record
        pass

    def send(self, status, body, content_type="application/json", headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_POST(self):
        st = self.server.state
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        seq, idx, step = st.take()
        hdrs = {k.lower(): v for k, v in self.headers.items()}
        rec = {"seq": seq, "t": time.time(), "method": "POST", "path": self.path,
               "headers": hdrs, "has_key": "authorization" in hdrs or "x-api-key" in hdrs,
               "step": idx, "bytes": len(raw)}
        body = None
        try:
            body = rec["body"] = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            rec["body_raw"] = raw.decode("utf-8", "replace")
        step, usage_error = self.auto_usage(step, raw, body, rec)
        st.write_log(rec)
        try:
            if usage_error:
                self.send(400, json.dumps(error_body(self.path.split("?")[0], {
                    "message": usage_error, "type": "invalid_request_error"})).encode())
            else:
                self.answer(step)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout): fine

    def auto_usage(self, step, raw, body, rec):
        """A copy of the step with its "auto" usage counted from this request; (step, error)."""
        for kind in ("openai", "anthropic"):
            spec = (step or {}).get(kind)
            if isinstance(spec, dict) and spec.get("usage") == "auto":
                if not isinstance(body, dict):
                    return step, "mock model server: the request body is not JSON"
                out = reply_tokens(spec)
                try:
                    u = (anthropic_usage(self.server.state, body, out) if kind == "anthropic"
                         else openai_usage(self.server.state, raw, out))
                except CacheError as e:
                    return step, str(e)
                rec["usage"] = u
                step = dict(step)
                step[kind] = dict(spec, usage=u)
        return step, None

    def answer(self, step):
        path = self.path.split("?")[0]
        if step is None:
            if self.server.state.delay_ms:
                time.sleep(self.server.state.delay_ms / 1000.0)
            self.send(500, json.dumps(error_body(path, {
                "message": "mock model server: script exhausted", "type": "server_error"}))
                .encode())
            return
        delay = self.server.state.delay_ms + (step.get("delay_ms") or 0)
        if delay:
            time.sleep(delay / 1000.0)
        if step.get("drop"):
            self.close_connection = True
            self.connection.shutdown(2)
            return
        want = step.get("expect_path")
        if want and path != want:
            self.send(500, json.dumps(error_body(path, {
                "message": "script expected %s, got %s" % (want, path)})).encode())
            return
        status = step.get("status", 200)
        ctype = step.get("content_type", "application/json")
        if "body" in step:
            data = json.dumps(step["body"]).encode()
        elif "raw" in step:
            data = step["raw"].encode() * int(step.get("repeat", 1))
        elif "openai" in step:
            data = json.dumps(openai_reply(step["openai"])).encode()
        elif "anthropic" in step:
            data = json.dumps(anthropic_reply(step["anthropic"])).encode()
        elif "error" in step:
            data = json.dumps(error_body(path, step["error"])).encode()
        else:
            data = b""
        self.send(status, data, ctype, step.get("headers"))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client hung up (cap reached, timeout): expected in tests
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--script", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--cache-min-tokens", type=int, default=1024)
    args = ap.parse_args()
    with open(args.script, encoding="utf-8") as f:
        script = json.load(f)
    steps = script["steps"] if isinstance(script, dict) else script
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.state = State(steps, args.log, args.delay_ms, args.cache_min_tokens)

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.05)
    except SystemExit:
        pass
    finally:
        srv.server_close()
        with srv.state.lock:  # no handler is half-way through a log line
            srv.state.log.close()
    # Leave without interpreter finalization: handler threads still asleep in a delayed step
    # can hang CPython 3.11's exit (cpython#96387, #87135), and the tests wait for this exit.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
