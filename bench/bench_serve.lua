-- bench/bench_serve.lua -- wrk script: POST /v1/sandboxes/{id}/execute of print(1) on warm
-- sandboxes.  A thread owns the sandboxes ids[t], ids[t + T], ... (T threads), more than it
-- has connections.  A sandbox runs one cell at a time (a second request meanwhile is a 409),
-- and wrk's Lua cannot tell a thread's connections apart, so a request takes a sandbox that is
-- free and names itself after it (X-Request-Id, which the server echoes); its response gives
-- the sandbox back.  A request never meets a busy sandbox (a 409 would count in not_ok).
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
	local headers = {
		["Authorization"] = "Bearer " .. os.getenv("KEY"),
		["Content-Type"] = "application/json",
	}
	local accept = os.getenv("ACCEPT")
	if accept and accept ~= "" then
		headers["Accept"] = accept
	end
	reqs, free = {}, {}
	for id in string.gmatch(mine, "[^,]+") do
		local i = #reqs + 1
		headers["X-Request-Id"] = "bench-" .. i
		reqs[i] = wrk.format("POST", "/v1/sandboxes/" .. id .. "/execute", headers,
			'{"code": "print(1)"}')
		free[#free + 1] = i
	end
	bad = 0
end

function request()
	local i = table.remove(free)
	if not i then   -- no sandbox free: this request collides with one running (counted)
		bad = bad + 1
		return reqs[1]
	end
	return reqs[i]
end

function response(status, headers, body)
	local i = tonumber(string.match(headers["X-Request-Id"] or "", "^bench%-(%d+)$") or "")
	if i and reqs[i] then
		free[#free + 1] = i
	end
	if status ~= 200 or not i or not string.find(body, '"status":"ok"', 1, true) then
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
