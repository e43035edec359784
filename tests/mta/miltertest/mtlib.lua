-- mtlib.lua - helpers shared by the miltertest(8) scripts in this directory
-- (Debian package "miltertest", Lua 5.3). Loaded by each script with dofile()
-- from the script's own directory; not meant to be run on its own.
--
-- What it gives the scripts:
--   * variables from `miltertest -D NAME=VALUE` (wins) or the environment
--   * the milter address in any of the usual forms (converted for miltertest)
--   * negotiation with the same offer Postfix 3.7 and Sendmail 8.17 make
--     (version 6, actions 0x1ff, protocol 0x1fffff), a printout of what the
--     milter asked for, and optional checks of it (REQUIRE_PROTO, ...)
--   * an SMTP-like conversation that honours what was negotiated:
--       - steps the milter disabled (SMFIP_NO*) are not sent, nor their macros
--       - replies are not read for steps with SMFIP_NR_* (miltertest then reports
--         SMFIR_CONTINUE for them)
--       - header values carry their leading space only with SMFIP_HDR_LEADSPC,
--         and folded headers are sent as Postfix and Sendmail send them
--         ("first\n\tsecond": LF only, no CR). With HDR_LEADSPC miltertest
--         always sends one space before the value, so "Subject:x" and
--         "Subject:\tx" reach the milter as " x" and " \tx".
--       - the body is sent in chunks of at most 65535 bytes (MILTER_CHUNK_SIZE),
--         with CRLF line ends; a body reply of SMFIR_SKIP stops the body, any
--         other non-continue reply is an early decision
--       - the macros Postfix sends (with the explicit lists of postfix-lab.sh),
--         including {tls_version}/{cipher}/{cipher_bits} at HELO, MAIL and DATA
--         when TLS_VERSION is set
--   * checks of the end-of-message actions (added header, SMTP reply,
--     quarantine) and a pcall wrapper that prints PASS/FAIL: miltertest itself
--     exits 1 on a Lua error but does not always say why.
--
-- Limits of miltertest itself (Debian 2.11.0~beta2, "v1.6.0"):
--   * any single reply packet from the milter larger than about 1 KB (an added
--     header, an SMTP reply text, the negotiation reply with its macro lists)
--     overflows a 1024-byte buffer: miltertest dies with "stack smashing
--     detected" and exit 134, printing no FAIL line
--   * no IPv6 (inet6:), and a body string stops at the first NUL byte
--   * mt.negotiate() takes (conn, version, protocol, actions), unlike its man page
--
-- Variables used here (each script documents the rest):
--   MILTER_SOCKET   inet:PORT@HOST | inet:HOST:PORT | unix:/path | local:/path
--                   (default inet:8897@127.0.0.1). miltertest has no IPv6.
--   TIMEOUT         seconds to wait for each milter reply (default 60)
--   CONNECT_TRIES   connection attempts, 0.5 s apart (default 10)
--   CLIENT_NAME / CLIENT_ADDR  SMFIC_CONNECT data (default [127.0.0.1] / 127.0.0.1,
--                   what Postfix sends with smtpd_peername_lookup = no)
--   HELO            HELO name (default client.example.test)
--   TLS_VERSION / TLS_CIPHER / TLS_BITS  TLS macros to send (default: none; e.g.
--                   TLSv1.3 / TLS_AES_256_GCM_SHA384 / 256). With TLS, the
--                   conversation starts like Postfix's after STARTTLS: HELO without
--                   TLS macros, ABORT, HELO again with them (STARTTLS_ABORT=0: one HELO).
--   MT_OFFER_PROTO / MT_OFFER_ACTIONS  override what the "MTA" offers (numbers,
--                   0x.. accepted), e.g. MT_OFFER_PROTO=0x0fffff: no SMFIP_HDR_LEADSPC
--   REQUIRE_PROTO / FORBID_PROTO / REQUIRE_ACTIONS  comma-separated flag names
--                   (NR_CONN, NR_HDR, HDR_LEADSPC, SKIP, ... / ADDHDRS, QUARANTINE,
--                   SETSYMLIST, ...) the milter must / must not have negotiated
--   BODY_CHUNK      body chunk size (default 65535)
--   VERBOSE=1       print every step

local M = {}

-- errors without the file:line prefix (they are messages for the test log)
local function fail(msg) error(msg, 0) end

function M.var(name, default)
	local v = rawget(_G, name)          -- miltertest -D NAME=VALUE
	if v == nil then v = os.getenv(name) end
	if v == nil then return default end
	return tostring(v)
end

local function num(v)
	if v == nil or v == "" then return nil end
	local n = tonumber(v)
	if n == nil then fail("not a number: " .. tostring(v)) end
	return math.tointeger(n) or n
end

M.verbose = M.var("VERBOSE", "") == "1"
function M.say(s) mt.echo(s) end
function M.debug(s) if M.verbose then mt.echo(s) end end

-- ------------------------------------------------------------ addresses --
function M.socket()
	local s = M.var("MILTER_SOCKET", "inet:8897@127.0.0.1")
	if s:match("^inet6:") or s:match("^inet:%[") then
		fail("miltertest cannot connect over IPv6 (" .. s .. "); use inet:PORT@127.0.0.1 or unix:/path")
	end
	local h, p = s:match("^inet:([^:@]+):(%d+)$")      -- Postfix form inet:HOST:PORT
	if h then s = "inet:" .. p .. "@" .. h end
	if not (s:match("^inet:%d+@.+$") or s:match("^unix:/") or s:match("^local:/")) then
		fail("bad MILTER_SOCKET " .. s .. " (want inet:PORT@HOST, inet:HOST:PORT or unix:/path)")
	end
	return s
end

-- ------------------------------------------------------------ flag names --
M.PROTO = {
	NOCONNECT = 0x1, NOHELO = 0x2, NOMAIL = 0x4, NORCPT = 0x8, NOBODY = 0x10,
	NOHDRS = 0x20, NOEOH = 0x40, NR_HDR = 0x80, NOUNKNOWN = 0x100, NODATA = 0x200,
	SKIP = 0x400, RCPT_REJ = 0x800, NR_CONN = 0x1000, NR_HELO = 0x2000,
	NR_MAIL = 0x4000, NR_RCPT = 0x8000, NR_DATA = 0x10000, NR_UNKN = 0x20000,
	NR_EOH = 0x40000, NR_BODY = 0x80000, HDR_LEADSPC = 0x100000,
	MDS_256K = 0x10000000, MDS_1M = 0x20000000,
}
M.ACTIONS = {
	ADDHDRS = 0x1, CHGBODY = 0x2, ADDRCPT = 0x4, DELRCPT = 0x8, CHGHDRS = 0x10,
	QUARANTINE = 0x20, CHGFROM = 0x40, ADDRCPT_PAR = 0x80, SETSYMLIST = 0x100,
}
local function sorted_names(t)
	local names = {}
	for k in pairs(t) do names[#names + 1] = k end
	table.sort(names, function(a, b) return t[a] < t[b] end)
	return names
end

-- ------------------------------------------------------------ reply names --
M.REPLY = {
	accept = SMFIR_ACCEPT, continue = SMFIR_CONTINUE, reject = SMFIR_REJECT,
	tempfail = SMFIR_TEMPFAIL, replycode = SMFIR_REPLYCODE, discard = SMFIR_DISCARD,
	skip = SMFIR_SKIP,
}
local reply_name = {}
for k, v in pairs(M.REPLY) do reply_name[math.floor(v)] = k end
function M.rname(r)
	if r == nil then return "nil" end
	local c = math.floor(r)
	return (reply_name[c] or "?") .. "(" .. (c > 31 and c < 127 and string.char(c) or tostring(c)) .. ")"
end
-- "accept,continue" -> set of reply codes; "any" -> nil (anything goes)
function M.replies(spec)
	if spec == nil or spec == "" or spec == "any" then return nil end
	local set = {}
	for w in spec:gmatch("[^,%s]+") do
		local r = M.REPLY[w]
		if r == nil then fail("unknown reply '" .. w .. "' (accept|continue|reject|tempfail|replycode|discard|skip|any)") end
		set[math.floor(r)] = w
	end
	return set
end

-- ------------------------------------------------------------ connection --
local C = {}          -- state of the current connection
M.conn = nil

local function has_opt(bit) return mt.test_option(M.conn, bit) end
local function has_act(bit) return mt.test_action(M.conn, bit) end

-- run one protocol step unless skipped; returns the reply (CONTINUE for NR steps)
local function step(name, fn, no_bit, nr_bit)
	if no_bit and has_opt(no_bit) then
		M.debug("skip " .. name .. " (negotiated away)")
		return SMFIR_CONTINUE, true
	end
	local err = fn()
	if err ~= nil then fail(name .. ": " .. tostring(err)) end
	if nr_bit and has_opt(nr_bit) then
		M.debug("ok   " .. name .. " (no reply: SMFIP_NR)")
		return SMFIR_CONTINUE
	end
	local r = mt.getreply(M.conn)
	M.debug("ok   " .. name .. " -> " .. M.rname(r))
	return r
end

local function macro(stage, no_bit, ...)
	if no_bit and has_opt(no_bit) then return end
	local args = {...}
	if #args == 0 then return end
	local err = mt.macro(M.conn, stage, table.unpack(args))
	if err ~= nil then fail("mt.macro: " .. tostring(err)) end
end

local function tls_macros(list)
	if C.tls ~= nil then
		for _, kv in ipairs(C.tls) do list[#list + 1] = kv end
	end
	return list
end

local function flatten(pairs_list)
	local out = {}
	for _, kv in ipairs(pairs_list) do out[#out + 1] = kv[1]; out[#out + 1] = kv[2] end
	return out
end

local function check_flags(what, spec, table_, test, want)
	if spec == nil or spec == "" then return end
	for w in spec:gmatch("[^,%s]+") do
		local bit = table_[w]
		if bit == nil then fail(what .. ": unknown flag name " .. w) end
		if test(bit) ~= want then
			fail("milter " .. (want and "did not negotiate " or "negotiated ") .. w)
		end
	end
end

-- connect, negotiate, CONNECT and HELO (like an SMTP client connecting)
function M.open()
	local sock = M.socket()
	mt.set_timeout(num(M.var("TIMEOUT", "60")))
	M.conn = mt.connect(sock, num(M.var("CONNECT_TRIES", "10")), 0.5)
	if M.conn == nil then fail("mt.connect(" .. sock .. ") failed") end
	-- NB: miltertest takes (conn, version, protocol steps, actions), not the
	-- order its man page gives; nil = libmilter's SMFI_CURR_PROT/SMFI_CURR_ACTS
	-- (0x1fffff / 0x1ff), the same offer Postfix 3.7 and Sendmail 8.17 make
	local err = mt.negotiate(M.conn, 6, num(M.var("MT_OFFER_PROTO", "")), num(M.var("MT_OFFER_ACTIONS", "")))
	if err ~= nil then fail("negotiate: " .. tostring(err)) end
	local p, a = {}, {}
	for _, n in ipairs(sorted_names(M.PROTO)) do if has_opt(M.PROTO[n]) then p[#p + 1] = n end end
	for _, n in ipairs(sorted_names(M.ACTIONS)) do if has_act(M.ACTIONS[n]) then a[#a + 1] = n end end
	M.say("ok   negotiate " .. sock .. ": actions " .. table.concat(a, ",") .. "; protocol " .. table.concat(p, ","))
	check_flags("REQUIRE_PROTO", M.var("REQUIRE_PROTO", ""), M.PROTO, has_opt, true)
	check_flags("FORBID_PROTO", M.var("FORBID_PROTO", ""), M.PROTO, has_opt, false)
	check_flags("REQUIRE_ACTIONS", M.var("REQUIRE_ACTIONS", ""), M.ACTIONS, has_act, true)

	C.leadspc = has_opt(M.PROTO.HDR_LEADSPC)
	local tv = M.var("TLS_VERSION", "")
	if tv ~= "" then
		C.tls = { {"{tls_version}", tv},
		          {"{cipher}", M.var("TLS_CIPHER", "TLS_AES_256_GCM_SHA384")},
		          {"{cipher_bits}", M.var("TLS_BITS", "256")} }
	end
	C.helo = M.var("HELO", "client.example.test")
	C.queue_seq = 0
	local cname = M.var("CLIENT_NAME", "[127.0.0.1]")
	local caddr = M.var("CLIENT_ADDR", "127.0.0.1")

	macro(SMFIC_CONNECT, M.PROTO.NOCONNECT, "j", "lab.localdomain", "{daemon_name}", "lab.localdomain",
		"{daemon_addr}", "127.0.0.1", "v", "Postfix 3.7.11", "_", "unknown [" .. caddr .. "]",
		"{client_addr}", caddr, "{client_name}", "unknown")
	local r = step("connect", function() return mt.conninfo(M.conn, cname, caddr) end,
		M.PROTO.NOCONNECT, M.PROTO.NR_CONN)
	if r ~= SMFIR_CONTINUE then fail("connect: reply " .. M.rname(r) .. ", expected continue") end
	if C.tls ~= nil and M.var("STARTTLS_ABORT", "1") == "1" then
		-- Postfix: EHLO, STARTTLS (-> ABORT), EHLO again, now with the TLS macros
		r = step("helo (before STARTTLS)", function() return mt.helo(M.conn, C.helo) end,
			M.PROTO.NOHELO, M.PROTO.NR_HELO)
		if r ~= SMFIR_CONTINUE then fail("helo: reply " .. M.rname(r) .. ", expected continue") end
		M.abort("STARTTLS")
	end
	macro(SMFIC_HELO, M.PROTO.NOHELO, table.unpack(flatten(tls_macros({}))))
	r = step("helo", function() return mt.helo(M.conn, C.helo) end, M.PROTO.NOHELO, M.PROTO.NR_HELO)
	if r ~= SMFIR_CONTINUE then fail("helo: reply " .. M.rname(r) .. ", expected continue") end
	return M.conn
end

function M.abort(why)
	local err = mt.abort(M.conn)
	if err ~= nil then fail("abort: " .. tostring(err)) end
	M.debug("ok   ABORT" .. (why and (" (" .. why .. ")") or ""))
end

function M.close()
	if M.conn ~= nil then mt.disconnect(M.conn); M.conn = nil end
end

-- ------------------------------------------------------------ messages --
local function read_file(path)
	local f, e = io.open(path, "rb")
	if f == nil then fail("cannot read " .. path .. ": " .. tostring(e)) end
	local d = f:read("a")
	f:close()
	return d
end

-- split an RFC 5322 message into {name, raw} headers (raw = text after the
-- colon, folding kept as "\n" + continuation line) and a CRLF body
function M.parse_message(data)
	local s, e = data:find("\r?\n\r?\n")
	local head, body
	if s then head, body = data:sub(1, s - 1), data:sub(e + 1) else head, body = data, "" end
	local headers = {}
	local first = true
	for line in (head .. "\n"):gmatch("(.-)\r?\n") do
		if first and line:match("^From ") then
			-- mbox separator line
		elseif line:match("^[ \t]") and #headers > 0 then
			headers[#headers][2] = headers[#headers][2] .. "\n" .. line
		else
			local name, rest = line:match("^([^:%s]+):(.*)$")
			if name == nil then fail("not a header line: " .. line) end
			headers[#headers + 1] = {name, rest}
		end
		first = false
	end
	body = body:gsub("\r?\n", "\r\n")
	return headers, body
end

-- message description from variables with the given prefix (e.g. "FIRST_"),
-- falling back to the unprefixed variable, then to the defaults table
function M.message_from_vars(prefix, defaults)
	prefix = prefix or ""
	defaults = defaults or {}
	local function v(name, d)
		local x = M.var(prefix .. name, nil)
		if x == nil and prefix ~= "" then x = M.var(name, nil) end
		if x == nil then x = defaults[name] end
		if x == nil then x = d end
		return x
	end
	local msg = {
		from = v("FROM", "sender@example.test"),
		rcpts = {},
		mail_args = {},
	}
	for r in v("RCPT", "rcpt@example.test"):gmatch("[^,%s]+") do msg.rcpts[#msg.rcpts + 1] = r end
	for a in v("MAIL_ARGS", ""):gmatch("%S+") do msg.mail_args[#msg.mail_args + 1] = a end
	local file = v("MESSAGE_FILE", "")
	if file ~= "" then
		msg.headers, msg.body = M.parse_message(read_file(file))
		msg.label = file
	else
		local subject = v("SUBJECT", "miltertest message")
		msg.headers = {
			{"From", " Alice <alice@example.test>"}, {"To", " Bob <" .. msg.rcpts[1] .. ">"},
			{"Subject", " " .. subject}, {"Message-ID", " <" .. os.time() .. "." .. math.random(1, 1e9) .. "@example.test>"},
			{"Date", " " .. os.date("!%a, %d %b %Y %H:%M:%S +0000")},
			{"MIME-Version", " 1.0"}, {"Content-Type", " text/plain; charset=us-ascii"},
		}
		local bf = v("BODY_FILE", "")
		if bf ~= "" then
			msg.body = read_file(bf):gsub("\r?\n", "\r\n")
		else
			msg.body = (v("BODY", "Hello from miltertest.\nSecond line.\n")):gsub("\r?\n", "\r\n")
		end
		msg.label = "Subject: " .. subject
	end
	if msg.body == "" then
		-- miltertest would make up a body of its own for an empty one
		msg.body = "\r\n"
	end
	return msg
end

-- Run one transaction. Returns {stage = "mail"|"rcpt"|"data"|"header"|"eoh"|
-- "body"|"eom", reply = code}: the first step whose reply was not
-- SMFIR_CONTINUE (SMFIR_SKIP at body excepted), or "eom".
-- stop_after = "rcpt"|"header"|"body": stop after that step (after all
-- recipients / all headers / the first body chunk) as a client that gives up
-- would, and return {stage = stop_after, reply = SMFIR_CONTINUE, stopped = true}.
function M.transaction(msg, stop_after)
	local P = M.PROTO
	C.queue_seq = C.queue_seq + 1
	local qid = string.format("MT%08X", C.queue_seq)
	local function early(stage, r) return {stage = stage, reply = r} end

	macro(SMFIC_MAIL, P.NOMAIL, table.unpack(flatten(tls_macros({ {"i", qid},
		{"{mail_addr}", msg.from}, {"{mail_host}", msg.from:match("@(.*)$") or ""}, {"{mail_mailer}", "virtual"} }))))
	local margs = {"<" .. msg.from .. ">"}
	for _, a in ipairs(msg.mail_args) do margs[#margs + 1] = a end
	local r = step("MAIL FROM " .. margs[1], function() return mt.mailfrom(M.conn, table.unpack(margs)) end, P.NOMAIL, P.NR_MAIL)
	if r ~= SMFIR_CONTINUE then return early("mail", r) end

	for _, rc in ipairs(msg.rcpts) do
		macro(SMFIC_RCPT, P.NORCPT, "i", qid, "{rcpt_addr}", rc, "{rcpt_host}", rc:match("@(.*)$") or "", "{rcpt_mailer}", "virtual")
		r = step("RCPT TO <" .. rc .. ">", function() return mt.rcptto(M.conn, "<" .. rc .. ">") end, P.NORCPT, P.NR_RCPT)
		if r ~= SMFIR_CONTINUE then return early("rcpt", r) end
	end
	if stop_after == "rcpt" then return {stage = "rcpt", reply = r, stopped = true} end

	macro(string.byte("T"), P.NODATA, table.unpack(flatten(tls_macros({ {"i", qid} }))))
	r = step("DATA", function() return mt.data(M.conn) end, P.NODATA, P.NR_DATA)
	if r ~= SMFIR_CONTINUE then return early("data", r) end

	for _, h in ipairs(msg.headers) do
		local value = h[2]
		if not C.leadspc then
			value = value:gsub("^[ \t]+", "")
		elseif value:sub(1, 1) == " " then
			-- with SMFIP_HDR_LEADSPC miltertest itself puts one space in front
			value = value:sub(2)
		end
		r = step("header " .. h[1], function() return mt.header(M.conn, h[1], value) end, P.NOHDRS, P.NR_HDR)
		if r ~= SMFIR_CONTINUE then return early("header", r) end
	end
	if stop_after == "header" then return {stage = "header", reply = r, stopped = true} end

	macro(string.byte("N"), P.NOEOH, "i", qid)
	r = step("EOH", function() return mt.eoh(M.conn) end, P.NOEOH, P.NR_EOH)
	if r ~= SMFIR_CONTINUE then return early("eoh", r) end

	if not has_opt(P.NOBODY) then
		local size = num(M.var("BODY_CHUNK", "65535"))
		local body, pos, n = msg.body, 1, 0
		while pos <= #body do
			local chunk = body:sub(pos, pos + size - 1)
			pos = pos + #chunk
			n = n + 1
			r = step("body chunk " .. n .. " (" .. #chunk .. " bytes)",
				function() return mt.bodystring(M.conn, chunk) end, nil, P.NR_BODY)
			if r == SMFIR_SKIP then M.debug("     milter asked to skip the rest of the body"); break end
			if r ~= SMFIR_CONTINUE then return early("body", r) end
			if stop_after == "body" then return {stage = "body", reply = r, stopped = true} end
		end
	end

	macro(string.byte("E"), nil, "i", qid)
	local err = mt.eom(M.conn)
	if err ~= nil then fail("eom: " .. tostring(err)) end
	r = mt.getreply(M.conn)
	M.debug("ok   EOM -> " .. M.rname(r))
	return {stage = "eom", reply = r}
end

-- the n-th value of an added or inserted header, or nil
local function added_header(name, n)
	return mt.getheader(M.conn, name, n)
end

-- Check a transaction result against expectations read from variables with
-- the given prefix (falling back to unprefixed ones, then to defaults):
--   EXPECT_REPLY    comma list of acceptable replies, or "any"
--   EXPECT_AT       stage of the decision: mail|rcpt|data|header|eoh|body|eom|any (default eom)
--   EXPECT_HEADER   header name the milter must add ("" = no check)
--   EXPECT_VALUE    its exact value ("" = any)   EXPECT_VALUE_LIKE  Lua pattern for it
--                   With SMFIP_HDR_LEADSPC negotiated the added value must start with
--                   a space or tab (the MTA copies it verbatim after the colon), and
--                   one leading space is removed before comparing; CHECK_LEADSPC=0
--                   skips that check.
--   EXPECT_NO_HEADER  header name the milter must not add
--   EXPECT_SMTP     full SMTP reply ("550 5.7.1 text"); compared with the whole
--                   SMFIR_REPLYCODE string, so give code, enhanced code and text
--   EXPECT_QUARANTINE  1 = must quarantine, 0 = must not, "" = no check
--   EXPECT_QUARANTINE_REASON  exact reason text (optional)
function M.check(label, res, prefix, defaults)
	prefix = prefix or ""
	defaults = defaults or {}
	local function v(name, d)
		local x = M.var(prefix .. name, nil)
		if x == nil and prefix ~= "" then x = M.var(name, nil) end
		if x == nil then x = defaults[name] end
		if x == nil then x = d end
		return x
	end
	local want = M.replies(v("EXPECT_REPLY", "accept,continue"))
	local at = v("EXPECT_AT", "eom")
	if at ~= "any" and res.stage ~= at then
		fail(label .. ": decision " .. M.rname(res.reply) .. " at " .. res.stage .. ", expected one at " .. at)
	end
	if want ~= nil and want[math.floor(res.reply)] == nil then
		local names = {}
		for _, n in pairs(want) do names[#names + 1] = n end
		table.sort(names)
		fail(label .. ": reply " .. M.rname(res.reply) .. " at " .. res.stage .. ", expected " .. table.concat(names, " or "))
	end
	M.say("ok   " .. label .. ": " .. M.rname(res.reply) .. " at " .. res.stage)
	if res.stage ~= "eom" then return end

	local hname = v("EXPECT_HEADER", "")
	if hname ~= "" then
		local exact, like = v("EXPECT_VALUE", ""), v("EXPECT_VALUE_LIKE", "")
		local found, seen, i = nil, {}, 0
		while true do
			local val = added_header(hname, i)
			if val == nil then break end
			if C.leadspc then
				-- Postfix and Sendmail write "Name:" .. value verbatim when
				-- SMFIP_HDR_LEADSPC is negotiated: the milter must supply the space
				if not val:match("^[ \t]") and M.var("CHECK_LEADSPC", "1") == "1" then
					fail(label .. ": added header '" .. hname .. ":" .. val .. "' has no leading space although"
						.. " SMFIP_HDR_LEADSPC was negotiated (the MTA would write it without a space)")
				end
				val = val:gsub("^ ", "")
			end
			seen[#seen + 1] = val
			if (exact == "" or val == exact) and (like == "" or val:match(like)) then found = val; break end
			i = i + 1
		end
		if found == nil then
			fail(label .. ": milter did not add header " .. hname
				.. (exact ~= "" and (": " .. exact) or "") .. (like ~= "" and (" matching " .. like) or "")
				.. (#seen > 0 and (" (it added: " .. table.concat(seen, " | ") .. ")") or ""))
		end
		M.say("ok   " .. label .. ": added " .. hname .. ": " .. found)
	end
	local nohdr = v("EXPECT_NO_HEADER", "")
	if nohdr ~= "" and added_header(nohdr, 0) ~= nil then
		fail(label .. ": milter added header " .. nohdr .. ": " .. added_header(nohdr, 0))
	end
	local smtp = v("EXPECT_SMTP", "")
	if smtp ~= "" then
		local code, rest = smtp:match("^(%d%d%d)%s*(.*)$")
		if code == nil then fail("EXPECT_SMTP must start with a 3-digit code: " .. smtp) end
		local esc, text = rest:match("^(%d%.%d+%.%d+)%s*(.*)$")
		local ok
		if esc == nil and rest == "" then ok = mt.eom_check(M.conn, MT_SMTPREPLY, code)
		elseif esc == nil then fail("EXPECT_SMTP with text needs an enhanced status code too: " .. smtp)
		elseif text == "" then ok = mt.eom_check(M.conn, MT_SMTPREPLY, code, esc)
		else ok = mt.eom_check(M.conn, MT_SMTPREPLY, code, esc, text) end
		if not ok then
			fail(label .. ": milter did not set SMTP reply '" .. smtp .. "' (compared with the whole reply)")
		end
		M.say("ok   " .. label .. ": SMTP reply " .. smtp)
	end
	local q = v("EXPECT_QUARANTINE", "")
	if q == "1" then
		local reason = v("EXPECT_QUARANTINE_REASON", "")
		local ok
		if reason ~= "" then ok = mt.eom_check(M.conn, MT_QUARANTINE, reason)
		else ok = mt.eom_check(M.conn, MT_QUARANTINE) end
		if not ok then fail(label .. ": milter did not quarantine" .. (reason ~= "" and (" with reason '" .. reason .. "'") or "")) end
		M.say("ok   " .. label .. ": quarantined" .. (reason ~= "" and (" (" .. reason .. ")") or ""))
	elseif q == "0" then
		if mt.eom_check(M.conn, MT_QUARANTINE) then fail(label .. ": milter quarantined the message") end
	end
end

-- run main() and print PASS/FAIL; a failure ends miltertest with exit 1
function M.run(script, main)
	local ok, msg = pcall(main)
	if M.conn ~= nil then pcall(M.close) end
	if not ok then
		mt.echo("FAIL " .. script .. ": " .. tostring(msg))
		error(msg, 0)
	end
	mt.echo("PASS " .. script)
end

return M
