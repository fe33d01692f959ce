-- bench/bench_serve.lua -- wrk script: POST /v1/sandboxes/{id}/execute of print(1) on warm
-- sandboxes.  A thread owns the sandboxes ids[t], ids[t + T], ... (T threads) and sends its
-- requests to them in turn.  bench_serve.sh runs one connection per thread and one sandbox
-- per connection, so a request never meets a sandbox busy with an earlier one (a 409 would
-- count in not_ok).
-- Environment: IDS (comma-separated sandbox ids), KEY (API key), THREADS (wrk's -t), ACCEPT
-- (optional: "application/json" for the aggregated reply; default NDJSON streaming).
local ids = {}
for id in string.gmatch(os.getenv("IDS") or "", "[^,]+") do
	ids[#ids + 1] = id
end
local threads = {}

function setup(thread)
	local t, n = #threads, tonumber(os.getenv("THREADS") or "1")
	local mine = {}
	for i = t + 1, #ids, n do
		mine[#mine + 1] = ids[i]
	end
	thread:set("mine", table.concat(mine, ","))
	table.insert(threads, thread)
end

function init(args)
	wrk.method = "POST"
	wrk.body = '{"code": "print(1)"}'
	wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
	wrk.headers["Content-Type"] = "application/json"
	local accept = os.getenv("ACCEPT")
	if accept and accept ~= "" then
		wrk.headers["Accept"] = accept
	end
	reqs = {}
	for id in string.gmatch(mine, "[^,]+") do
		reqs[#reqs + 1] = wrk.format(nil, "/v1/sandboxes/" .. id .. "/execute")
	end
	next_req = 0
	bad = 0
end

function request()
	next_req = next_req % #reqs + 1
	return reqs[next_req]
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
