-- session.lua - replay a multi-message SMTP session on ONE milter connection,
-- the way Postfix drives a milter, and check that per-message state is reset.
-- Uses miltertest(8) (Debian package "miltertest").
--
--   connect, HELO (with TLS: HELO, ABORT, HELO as after STARTTLS), then
--   1. ABORTED  MAIL, RCPT[, headers[, body]] and ABORT (client RSET/disconnect):
--               no decision expected; replies must be CONTINUE
--   2. FIRST    a complete message; default: accepted with the verdict header
--   3. EARLY    a message the milter decides on (default: rejected at end of
--               message); with EARLY_EXPECT_AT=body|header|rcpt|... the decision
--               must come at that step and the rest of the message is not sent
--   4. AFTER    a complete message after that decision; default: accepted with
--               the verdict header (so nothing leaked from message 3)
--   Postfix sends ABORT after every finished transaction (also after end of
--   message) before the next MAIL; ABORT_AFTER_EOM=0 does what Sendmail does
--   (no ABORT after a completed message).
--
--   MILTER_SOCKET=inet:8897@127.0.0.1 miltertest -s tests/mta/miltertest/session.lua
--   miltertest -D MILTER_SOCKET=unix:/run/m.sock -D EARLY_MESSAGE_FILE=big-bad.eml \
--              -D EARLY_EXPECT_AT=body -D TLS_VERSION=TLSv1.3 -s tests/mta/miltertest/session.lua
--
-- Variables (environment, or -D NAME=VALUE which wins). Each message reads
-- PREFIX_NAME first (prefixes ABORTED_, FIRST_, EARLY_, AFTER_), then NAME
-- (which so applies to all four; set e.g. EARLY_EXPECT_HEADER= to exempt one),
-- then its default:
--   the message:  MESSAGE_FILE, or SUBJECT + BODY/BODY_FILE; FROM, RCPT, MAIL_ARGS
--                 (default subjects: "session aborted", "session first",
--                 "REJECT-ME", "session after")
--   expectations: EXPECT_REPLY, EXPECT_AT, EXPECT_HEADER, EXPECT_VALUE,
--                 EXPECT_VALUE_LIKE, EXPECT_NO_HEADER, EXPECT_SMTP,
--                 EXPECT_QUARANTINE, EXPECT_QUARANTINE_REASON (see mtlib.lua)
--                 defaults: FIRST_/AFTER_: accept,continue at eom, header
--                 X-Inspect-Verdict like ^accept, not quarantined;
--                 EARLY_: reject,replycode at eom, no header check
--   ABORT_AT       where message 1 is aborted: rcpt (default), header, body
--   EARLY_ABORT    1 (default): send ABORT after an early decision (before eom)
--   ABORT_AFTER_EOM  1 (default, Postfix) / 0 (Sendmail)
--   connection:   see mtlib.lua (TLS_VERSION, REQUIRE_PROTO, ...)
-- Output: one line per check, last line "PASS session.lua" (exit 0) or
-- "FAIL session.lua: <reason>" (exit 1).
local dir = debug.getinfo(1, "S").source:match("^@?(.*)/[^/]*$") or "."
local M = dofile(dir .. "/mtlib.lua")

local function accept_defaults(prefix, subject)
	local exact = M.var(prefix .. "EXPECT_VALUE", M.var("EXPECT_VALUE", ""))
	return { SUBJECT = subject, EXPECT_REPLY = "accept,continue", EXPECT_AT = "eom",
		EXPECT_HEADER = "X-Inspect-Verdict", EXPECT_VALUE_LIKE = exact == "" and "^accept" or "",
		EXPECT_QUARANTINE = "0" }
end

M.run("session.lua", function()
	local abort_after_eom = M.var("ABORT_AFTER_EOM", "1") == "1"
	M.open()

	-- 1. a transaction the client gives up on
	local msg = M.message_from_vars("ABORTED_", { SUBJECT = "session aborted" })
	local at = M.var("ABORT_AT", "rcpt")
	if at ~= "rcpt" and at ~= "header" and at ~= "body" then
		error("ABORT_AT must be rcpt, header or body", 0)
	end
	M.say("*** 1 (aborted after " .. at .. "): " .. msg.label)
	local res = M.transaction(msg, at)
	if not res.stopped or res.reply ~= SMFIR_CONTINUE then
		error("message 1: reply " .. M.rname(res.reply) .. " at " .. res.stage .. " before the abort", 0)
	end
	M.abort("message 1 abandoned")
	M.say("ok   message 1: aborted after " .. at)

	-- 2. a complete message
	local d2 = accept_defaults("FIRST_", "session first")
	msg = M.message_from_vars("FIRST_", d2)
	M.say("*** 2: " .. msg.label)
	M.check("message 2", M.transaction(msg), "FIRST_", d2)
	if abort_after_eom then M.abort("after message 2") end

	-- 3. a message the milter decides on, maybe before end of message
	local d3 = { SUBJECT = "REJECT-ME", EXPECT_REPLY = "reject,replycode", EXPECT_AT = "eom" }
	msg = M.message_from_vars("EARLY_", d3)
	M.say("*** 3: " .. msg.label)
	res = M.transaction(msg)
	M.check("message 3", res, "EARLY_", d3)
	if res.stage ~= "eom" then
		if M.var("EARLY_ABORT", "1") == "1" then M.abort("after early decision") end
	elseif abort_after_eom then
		M.abort("after message 3")
	end

	-- 4. a message after that decision
	local d4 = accept_defaults("AFTER_", "session after")
	msg = M.message_from_vars("AFTER_", d4)
	M.say("*** 4: " .. msg.label)
	M.check("message 4", M.transaction(msg), "AFTER_", d4)
	if abort_after_eom then M.abort("after message 4") end
end)
