-- tempfail.lua - one complete transaction that the milter must refuse
-- temporarily at end of message (SMFIR_TEMPFAIL, or SMFIR_REPLYCODE with a 4xx
-- reply). Uses miltertest(8) (Debian package "miltertest").
--
--   miltertest -D MILTER_SOCKET=inet:8897@127.0.0.1 -D MESSAGE_FILE=x.eml \
--              -D 'EXPECT_SMTP=451 4.7.1 Try again later' -s tests/mta/miltertest/tempfail.lua
--
-- Variables (environment, or -D NAME=VALUE which wins):
--   the message:  MESSAGE_FILE, or SUBJECT (default "TEMPFAIL-ME") + BODY/BODY_FILE;
--                 FROM, RCPT, MAIL_ARGS
--   expectations: EXPECT_REPLY (default tempfail,replycode), EXPECT_AT (default eom),
--                 EXPECT_SMTP (full reply, optional), EXPECT_HEADER... (default: no check)
--   connection:   see mtlib.lua
-- Output: last line "PASS tempfail.lua" (exit 0) or "FAIL tempfail.lua: <reason>" (exit 1).
local dir = debug.getinfo(1, "S").source:match("^@?(.*)/[^/]*$") or "."
local M = dofile(dir .. "/mtlib.lua")

M.run("tempfail.lua", function()
	local defaults = { SUBJECT = M.var("SUBJECT", "TEMPFAIL-ME"),
		EXPECT_REPLY = M.var("EXPECT_REPLY", "tempfail,replycode") }
	M.open()
	local msg = M.message_from_vars("", defaults)
	M.say("*** tempfail.lua: " .. msg.label)
	M.check("message", M.transaction(msg), "", defaults)
end)
