-- bench/bench_serve.lua -- wrk script: POST /v1/sandboxes/{id}/execute of print(1), each wrk
-- thread on its own warm sandbox (run wrk with as many threads as connections).
-- Environment: IDS (comma-separated sandbox ids), KEY (API key), ACCEPT (optional: set
-- "application/json" for the aggregated reply; default NDJSON streaming).
local ids = {}
for id in string.gmatch(os.getenv("IDS") or "", "[^,]+") do
	ids[#ids + 1] = id
end
local threads = {}

function setup(thread)
	thread:set("id", ids[#threads % #ids + 1])
	table.insert(threads, thread)
end

function init(args)
	wrk.method = "POST"
	wrk.path = "/v1/sandboxes/" .. id .. "/execute"
	wrk.body = '{"code": "print(1)"}'
	wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
	wrk.headers["Content-Type"] = "application/json"
	local accept = os.getenv("ACCEPT")
	if accept and accept ~= "" then
		wrk.headers["Accept"] = accept
	end
	req = wrk.format()
	bad = 0
end

function request()
	return req
end

function response(status, headers, body)
	if status ~= 200 or not string.find(body, '"status":"ok"', 1, true) then
		bad = bad + 1
	end
end

function done(summary, latency, requests)
	local failed = 0
	for _, t in ipairs(threads) do
		failed = failed + t:get("bad")
	end
	io.write(string.format("BENCH requests=%d seconds=%.2f rps=%.1f p50_ms=%.3f p90_ms=%.3f " ..
		"p99_ms=%.3f max_ms=%.3f not_ok=%d socket_errors=%d\n",
		summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
		latency:percentile(50) / 1000, latency:percentile(90) / 1000,
		latency:percentile(99) / 1000, latency.max / 1000, failed,
		summary.errors.connect + summary.errors.read + summary.errors.write +
		summary.errors.timeout))
end
