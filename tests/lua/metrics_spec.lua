-- The metrics registry: series by label values, Prometheus text rendering (validated by
-- promtool in the e2e suite), re-registration and its errors.
local metrics = require "smg.metrics"

describe("metrics", function()
  it("counts by label values and renders the text format", function()
    local c = metrics.counter("spec_things_total", "Things\nseen", { "kind" })
    c:inc(1, "a")
    c:inc(2, "a")
    c:inc(1, 'we"ird\\')
    local h = metrics.histogram("spec_latency_seconds", "Latency", {}, { 0.1, 1 })
    h:observe(0.05)
    h:observe(0.5)
    h:observe(5)
    local text = metrics.render()
    assert.matches('# HELP spec_things_total Things\\nseen\n# TYPE spec_things_total counter\n', text, 1, true)
    assert.matches('spec_things_total{kind="a"} 3\n', text, 1, true)
    assert.matches('spec_things_total{kind="we\\"ird\\\\"} 1\n', text, 1, true)
    assert.matches('spec_latency_seconds_bucket{le="0.1"} 1\nspec_latency_seconds_bucket{le="1"} 2\n'
      .. 'spec_latency_seconds_bucket{le="+Inf"} 3\nspec_latency_seconds_sum 5.55\nspec_latency_seconds_count 3\n', text, 1, true)
  end)

  it("returns the same metric on re-registration and refuses conflicts", function()
    local a = metrics.counter("spec_again_total", "x", { "l" })
    assert.are.equal(a, metrics.counter("spec_again_total", "x", { "l" }))
    assert.has_error(function() metrics.gauge("spec_again_total", "x", { "l" }) end)
    assert.has_error(function() metrics.counter("bad name", "x") end)
    assert.has_error(function() metrics.counter("spec_ok_total", "x", { "le" }) end)
  end)

  it("reads gauges through their collect function", function()
    local n = 0
    metrics.gauge("spec_live", "live things", {}, function(m) m:set(n) end)
    n = 7
    assert.matches("\nspec_live 7\n", metrics.render(), 1, true)
  end)
end)
