#!/usr/bin/python3
"""Scripted model server for tests: OpenAI- and Anthropic-compatible, loopback only.

    /usr/bin/python3 tests/mock/model_server.py --script steps.json --log requests.jsonl [--port 0]

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

Log: one JSON line per request received, appended and flushed before the answer:
    {"seq": 1, "t": <unix time, float>, "method": "POST", "path": "/v1/messages",
     "headers": {lower-case name: value, ...}, "has_key": true, "step": 0,
     "body": <parsed JSON> | "body_raw": "<text, when not JSON>"}
Headers are logged as received (fake keys only: this server is for tests); "has_key" says
whether an Authorization or x-api-key header was present.
"""
import argparse
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self, steps, log_path):
        self.steps = steps
        self.next = 0
        self.seq = 0
        self.lock = threading.Lock()
        self.log = open(log_path, "a", encoding="utf-8")

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
               "step": idx}
        try:
            rec["body"] = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            rec["body_raw"] = raw.decode("utf-8", "replace")
        st.write_log(rec)
        try:
            self.answer(step)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout): fine

    def answer(self, step):
        path = self.path.split("?")[0]
        if step is None:
            self.send(500, json.dumps(error_body(path, {
                "message": "mock model server: script exhausted", "type": "server_error"}))
                .encode())
            return
        if step.get("delay_ms"):
            time.sleep(step["delay_ms"] / 1000.0)
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
    args = ap.parse_args()
    with open(args.script, encoding="utf-8") as f:
        script = json.load(f)
    steps = script["steps"] if isinstance(script, dict) else script
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.state = State(steps, args.log)

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
        srv.state.log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
