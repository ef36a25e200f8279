-- The pii guardrail through the real loader and hook runner: detection of every type,
-- redaction into placeholders on input, de-anonymization on output, block mode.
local plugins = require "smg.plugins"

describe("pii guardrail", function()
  local p = assert(plugins.load("guardrail", "pii", {}))

  local function types(text)
    local out = {}
    for _, h in ipairs(p.find_all(text)) do out[#out + 1] = h.type .. "=" .. text:sub(h.from, h.to) end
    return out
  end

  it("finds each type and rejects look-alikes", function()
    assert.are.same({ "email=jane.doe+x@mail.example.org" }, types("write to jane.doe+x@mail.example.org now"))
    assert.are.same({ "credit_card=4111-1111-1111-1111" }, types("card 4111-1111-1111-1111"))
    assert.are.same({}, types("card 4111-1111-1111-1112"), "Luhn check fails")
    assert.are.same({ "national_id=123-45-6789" }, types("ssn 123-45-6789"))
    assert.are.same({}, types("ssn 000-45-6789"))
    assert.are.same({ "national_id=AB123456C" }, types("nino AB123456C"))
    assert.are.same({ "iban=DE89370400440532013000" }, types("iban DE89370400440532013000"))
    assert.are.same({}, types("iban DE89370400440532013001"), "mod-97 check fails")
    assert.are.same({ "ip_address=192.168.1.20" }, types("host 192.168.1.20"))
    assert.are.same({}, types("host 999.168.1.20"))
    assert.are.same({ "phone=+44 20 7946 0958" }, types("call +44 20 7946 0958"))
    assert.are.same({ "secret=AKIAIOSFODNN7EXAMPLE" }, types("aws AKIAIOSFODNN7EXAMPLE"))
    assert.are.same({ "secret=ghp_abcdefghijklmnopqrstuvwxyz0123456789" }, types("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789"))
    assert.are.same({}, types("order 12345 shipped on 2026-11-25"))
  end)

  it("sees values written to evade it: full-width, zero-width, dotted, encoded", function()
    local fw = "\239\189\129\239\189\140\239\189\137\239\189\131\239\189\133\239\188\160example.com" -- ａｌｉｃｅ＠
    assert.are.same({ "email=" .. fw }, types("mail " .. fw .. " now"))
    local zw = "al\226\128\139ice@exa\226\128\139mple.com"
    assert.are.same({ "email=" .. zw }, types("mail " .. zw))
    local digits = "\239\188\148" .. ("\239\188\145"):rep(15) -- ４ then １ x15: 4111111111111111
    assert.are.same({ "credit_card=" .. digits }, types("card " .. digits))
    assert.are.same({ "credit_card=4111.1111.1111.1111" }, types("card 4111.1111.1111.1111"))
    assert.are.same({ "email=am9obkBleGFtcGxlLmNvbQ==" }, types("b64 am9obkBleGFtcGxlLmNvbQ=="))
    assert.are.same({ "email=john%40example.com" }, types("q=john%40example.com"))
    assert.are.same({ "email=6a6f686e406578616d706c652e636f6d" }, types("hex 6a6f686e406578616d706c652e636f6d"))
    -- Hashes, UUIDs and random tokens decode to binary: nothing.
    assert.are.same({}, types("sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"))
    assert.are.same({}, types("id 3f2504e0-4f89-11d3-9a0c-0305e82c3301 token dGhpcyBpcyBhIHRlc3Q"))
  end)

  it("marks uncertain finds low confidence: bare nine digits, bare ten digits, 1.2.3.4", function()
    local function low(text)
      local out = {}
      for _, h in ipairs(p.find_all(text)) do out[#out + 1] = h.type .. (h.low and "?" or "") end
      return out
    end
    assert.are.same({ "national_id?" }, low("ref 123456789"))
    assert.are.same({ "national_id" }, low("SSN: 123456789"))
    assert.are.same({ "national_id" }, low("social security number 123 45 6789"))
    assert.are.same({ "phone?" }, low("created 1733140000"))
    assert.are.same({ "phone" }, low("phone 5551234567"))
    assert.are.same({ "phone" }, low("call (555) 123-4567"))
    assert.are.same({ "ip_address?" }, low("release 1.2.3.4"))
    assert.are.same({ "ip_address" }, low("ip 1.2.3.4"))
    assert.are.same({ "ip_address" }, low("server 10.0.0.12"))
  end)

  it("annotates low-confidence finds without rewriting the call", function()
    local _, res = plugins.run_hook(p, "check_input", 1, { server = "s", name = "t", state = {},
      arguments = { ticket = "1733140000", build = "1.2.3.4" } }, { additional_config = {} }, p.config)
    assert.is_true(res.allowed)
    assert.is_nil(res.redacted)
    assert.are.equal("low", res.violations[1].confidence)
  end)

  it("leaves exempt paths alone, per tool or for all", function()
    local policy = { additional_config = { exempt_paths = { "contact.email", "log:items.*.ip", "*.secret_ok" } } }
    local function run(name, args)
      local _, res = plugins.run_hook(p, "check_input", 1, { server = "s", name = name, state = {}, arguments = args },
        policy, p.config)
      return res.redacted or args
    end
    local out = run("log", { contact = { email = "a@example.com" }, other = "b@example.com",
      items = { { ip = "10.1.2.3" }, { host = "10.1.2.4" } } })
    assert.are.equal("a@example.com", out.contact.email)
    assert.are.equal("<EMAIL_1>", out.other)
    assert.are.equal("10.1.2.3", out.items[1].ip)
    assert.are.equal("<IP_ADDRESS_1>", out.items[2].host)
    out = run("other_tool", { items = { { ip = "10.1.2.3" } }, x = { secret_ok = "c@example.com" } })
    assert.are.equal("<IP_ADDRESS_1>", out.items[1].ip, "the log: prefix is for the log tool only")
    assert.are.equal("c@example.com", out.x.secret_ok)
  end)

  it("never splits a number between the pieces a long text is scanned in (found in review)", function()
    local long = ("x"):rep(8185) .. " 4111 1111 1111 1111 and (555) 123-4567 " .. ("y "):rep(5000)
    local call = { arguments = { q = long }, state = {} }
    local _, res = plugins.run_hook(p, "check_input", 2, call, { additional_config = {} }, p.config)
    assert.is_nil(res.redacted.q:find("4111", 1, true), "the card is redacted")
    assert.is_truthy(res.redacted.q:find("<CREDIT_CARD_1>", 1, true))
  end)

  it("redacts PII in a tool call's _meta, which check_input does not see", function()
    local msg = { point = "c2s:request", method = "tools/call", direction = "c2s", kind = "request",
      payload = { name = "t", arguments = { a = 1 }, _meta = { note = "from bob@example.com", progressToken = 5551234567 } } }
    local ok, res = plugins.run_hook(p, "on_message", 1, msg, { additional_config = {} }, p.config)
    assert.is_true(ok)
    assert.are.equal("from <EMAIL_1>", res.redacted._meta.note)
    assert.are.equal(5551234567, res.redacted._meta.progressToken, "the progress token is the client's, untouched")
    assert.are.equal("t", res.redacted.name)
    msg.payload._meta = { progressToken = 7 }
    ok, res = plugins.run_hook(p, "on_message", 1, msg, { additional_config = {} }, p.config)
    assert.is_nil(res)
  end)

  it("redacts PII in object keys and card numbers sent as JSON numbers", function()
    local call = { arguments = { ["bob@example.com"] = "vip", card = 4111111111111111, qty = 123456789 }, state = {} }
    local _, res = plugins.run_hook(p, "check_input", 1, call, { additional_config = {} }, p.config)
    assert.are.equal("vip", res.redacted["<EMAIL_1>"])
    assert.is_nil(res.redacted["bob@example.com"])
    assert.are.equal("<CREDIT_CARD_1>", res.redacted.card)
    assert.are.equal(123456789, res.redacted.qty, "an ordinary number stays a number")
  end)

  it("leaves times, MAC addresses, UUIDs and ticket numbers alone; finds real IPv6", function()
    for _, t in ipairs({ "meet at 10:30:00", "at 2026-12-01T10:30:00Z", "mac aa:bb:cc:dd:ee:ff",
      "id 550e8400-e29b-41d4-a716-446655440000", "ticket #1234567890", "build v2-0123456789" }) do
      assert.are.same({}, types(t), t)
    end
    assert.are.same({ "ip_address=2001:db8::8a2e:370:7334" }, types("host 2001:db8::8a2e:370:7334"))
    assert.are.same({ "ip_address=2001:0db8:85a3:0000:0000:8a2e:0370:7334" },
      types("host 2001:0db8:85a3:0000:0000:8a2e:0370:7334"))
    assert.are.same({ "ip_address=::1" }, types("loopback ::1 here"))
    assert.are.same({ "phone=(555) 123-4567" }, types("call (555) 123-4567 today"))
  end)

  it("redacts on input and restores the same values on output, per call", function()
    local call = { arguments = { to = "bob@example.com", note = "card 4111 1111 1111 1111, again bob@example.com" }, state = {} }
    local ok, res = plugins.run_hook(p, "check_input", 1, call, { additional_config = {} }, p.config)
    assert.is_true(ok)
    assert.is_true(res.allowed)
    assert.are.equal("<EMAIL_1>", res.redacted.to)
    assert.are.equal("card <CREDIT_CARD_1>, again <EMAIL_1>", res.redacted.note)
    local result = { content = { { type = "text", text = "sent to <EMAIL_1>" } } }
    ok, res = plugins.run_hook(p, "check_output", 1, call, result, { additional_config = {} }, p.config)
    assert.are.equal("sent to bob@example.com", res.redacted.content[1].text)
    -- Another call never sees this call's values.
    local other = { arguments = {}, state = {} }
    ok, res = plugins.run_hook(p, "check_output", 1, other, result, { additional_config = {} }, p.config)
    assert.is_true(res.allowed)
    assert.is_nil(res.redacted, "nothing to put back: the result passes as it came")
  end)

  it("redacts PII the upstream returns on its own", function()
    local call = { arguments = {}, state = {} }
    local _, res = plugins.run_hook(p, "check_output", 1, call, { text = "leak 123-45-6789" }, { additional_config = {} }, p.config)
    assert.are.equal("leak <NATIONAL_ID_1>", res.redacted.text)
    assert.are.equal("pii", res.violations[1].type)
  end)

  it("blocks instead when the policy says so, naming the type but not the value", function()
    local call = { arguments = { q = "mail me at a@b.io" }, state = {} }
    local _, res = plugins.run_hook(p, "check_input", 1, call, { additional_config = { action = "block" } }, p.config)
    assert.is_false(res.allowed)
    assert.are.same({ type = "pii", detail = "email" }, res.violations[1])
  end)

  it("limits detection to the configured types", function()
    local q = assert(plugins.load("guardrail", "pii", { types = { "email" } }))
    local call = { arguments = { q = "a@b.io 123-45-6789" }, state = {} }
    local _, res = plugins.run_hook(q, "check_input", 1, call, { additional_config = {} }, q.config)
    assert.are.equal("<EMAIL_1> 123-45-6789", res.redacted.q)
    assert.is_nil(plugins.load("guardrail", "pii", { types = { "shoe_size" } }))
  end)

  it("covers every part of overlapping finds (found by the fuzzer)", function()
    local call = { arguments = { q = "card 4111 1111 1111 1111b@example.com" }, state = {} }
    local _, res = plugins.run_hook(p, "check_input", 1, call, { additional_config = {} }, p.config)
    -- The card's last group is glued to the email's local part, so the digits go as a
    -- phone-shaped number and the email: nothing of either is left behind.
    assert.are.equal("card <PHONE_1> <EMAIL_1>", res.redacted.q, "no digits of the card are left behind")
  end)

  it("rescans after redacting, so a value a longer candidate hid is caught (found by the fuzzer)", function()
    local call = { arguments = { q = "card 4111 1111 1112 1111b@example.com" }, state = {} }
    local _, res = plugins.run_hook(p, "check_input", 1, call, { additional_config = {} }, p.config)
    assert.are.equal("card <PHONE_1> <EMAIL_1>", res.redacted.q)
  end)

  it("stays linear on crafted payloads (long word runs, dotted digits)", function()
    -- Each of these took seconds to minutes with a pattern that rescans runs.
    for _, text in ipairs({ string.rep("AB12", 50000), string.rep("1.", 100000), string.rep("x", 200000) .. "@" }) do
      local call = { arguments = { q = text }, state = {} }
      local ok = plugins.run_hook(p, "check_input", 5, call, { additional_config = {} }, p.config)
      assert.is_true(ok)
    end
  end)
end)
