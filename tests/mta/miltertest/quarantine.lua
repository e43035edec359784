-- quarantine.lua - one complete transaction that the milter must quarantine
-- (SMFIR_QUARANTINE, then accept/continue: Postfix puts the message on hold).
-- Uses miltertest(8) (Debian package "miltertest").
--
--   miltertest -D MILTER_SOCKET=inet:8897@127.0.0.1 -D MESSAGE_FILE=enc.eml \
--              -s tests/mta/miltertest/quarantine.lua
--
-- Variables (environment, or -D NAME=VALUE which wins):
--   the message:  MESSAGE_FILE, or SUBJECT (default "QUARANTINE-ME") + BODY/BODY_FILE;
--                 FROM, RCPT, MAIL_ARGS
--   expectations: EXPECT_REPLY (default accept,continue), EXPECT_AT (default eom),
--                 EXPECT_QUARANTINE_REASON (exact reason text, optional),
--                 EXPECT_HEADER (default X-Inspect-Verdict; "" = none),
--                 EXPECT_VALUE / EXPECT_VALUE_LIKE (default ^quarantine)
--   connection:   see mtlib.lua
-- Output: last line "PASS quarantine.lua" (exit 0) or "FAIL quarantine.lua: <reason>" (exit 1).
local dir = debug.getinfo(1, "S").source:match("^@?(.*)/[^/]*$") or "."
local M = dofile(dir .. "/mtlib.lua")

M.run("quarantine.lua", function()
	local defaults = { SUBJECT = M.var("SUBJECT", "QUARANTINE-ME"),
		EXPECT_REPLY = M.var("EXPECT_REPLY", "accept,continue"),
		EXPECT_HEADER = M.var("EXPECT_HEADER", "X-Inspect-Verdict"),
		EXPECT_VALUE_LIKE = M.var("EXPECT_VALUE_LIKE", M.var("EXPECT_VALUE", "") == "" and "^quarantine" or ""),
		EXPECT_QUARANTINE = "1" }
	M.open()
	local msg = M.message_from_vars("", defaults)
	M.say("*** quarantine.lua: " .. msg.label)
	M.check("message", M.transaction(msg), "", defaults)
end)
