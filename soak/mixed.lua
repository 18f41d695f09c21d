-- Mixed CORS traffic for soak/run.py: allowed and refused preflights, allowed and refused actual
-- requests, requests without Origin. A response is "ok" (2xx), "refused" (a deliberate 403 from
-- the filter: it carries x-cors-reason) or "bad" (anything else: counted and the first few shown).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok, refused, bad, acao = 0, 0, 0, 0
  bad_statuses = ""
  local h = function(t) return t end
  reqs = {
    wrk.format("OPTIONS", "/", {["Origin"] = "https://app.example.com",
      ["Access-Control-Request-Method"] = "PUT", ["Access-Control-Request-Headers"] = "x-a, content-type"}),
    wrk.format("OPTIONS", "/", {["Origin"] = "https://evil.net", ["Access-Control-Request-Method"] = "PUT"}),
    wrk.format("GET", "/", {["Origin"] = "https://a.b.example.com"}),
    wrk.format("GET", "/api", {["Origin"] = "https://evil.net"}),
    wrk.format("GET", "/", {}),
    wrk.format("POST", "/", {["Origin"] = "https://app.example.com", ["Content-Type"] = "text/plain"}, "x"),
    wrk.format("GET", "/", {["Origin"] = "https://app.example.com\xff"}),
    wrk.format("OPTIONS", "/", {["Origin"] = "null", ["Access-Control-Request-Method"] = "DELETE"}),
  }
  i = 0
end

function request()
  i = i + 1
  return reqs[(i % #reqs) + 1]
end

function response(status, headers, body)
  if headers["access-control-allow-origin"] then acao = acao + 1 end
  if status >= 200 and status < 300 then
    ok = ok + 1
  elseif status == 403 and headers["x-cors-reason"] then
    refused = refused + 1
  else
    bad = bad + 1
    if bad <= 5 then bad_statuses = bad_statuses .. status .. " " end
  end
end

function done(summary, latency, requests)
  local t_ok, t_refused, t_bad, t_acao, statuses = 0, 0, 0, 0, ""
  for _, t in ipairs(threads) do
    t_ok = t_ok + t:get("ok")
    t_refused = t_refused + t:get("refused")
    t_bad = t_bad + t:get("bad")
    t_acao = t_acao + t:get("acao")
    statuses = statuses .. t:get("bad_statuses")
  end
  io.write(string.format("SOAK ok=%d refused=%d bad=%d acao=%d bad_statuses=[%s]\n",
    t_ok, t_refused, t_bad, t_acao, statuses))
  io.write(string.format("SOAK errors connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout))
end
