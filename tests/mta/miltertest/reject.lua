-- reject.lua - one complete transaction that the milter must reject at end of
-- message (SMFIR_REJECT, or SMFIR_REPLYCODE with a custom SMTP reply). Uses
-- miltertest(8) (Debian package "miltertest").
--
--   miltertest -D MILTER_SOCKET=inet:8897@127.0.0.1 -D MESSAGE_FILE=bad.eml \
--              -D 'EXPECT_SMTP=550 5.7.1 Message rejected' -s tests/mta/miltertest/reject.lua
--
-- Variables (environment, or -D NAME=VALUE which wins):
--   the message:  MESSAGE_FILE, or SUBJECT (default "REJECT-ME") + BODY/BODY_FILE;
--                 FROM, RCPT, MAIL_ARGS
--   expectations: EXPECT_REPLY (default reject,replycode), EXPECT_AT (default eom),
--                 EXPECT_SMTP: the full custom reply "CODE X.Y.Z text" (optional;
--                 compared with the whole SMFIR_REPLYCODE string, so a bare "550"
--                 only matches a reply without enhanced code and text),
--                 EXPECT_HEADER/EXPECT_VALUE/EXPECT_VALUE_LIKE (default: no check)
--   connection:   see mtlib.lua
-- Output: last line "PASS reject.lua" (exit 0) or "FAIL reject.lua: <reason>" (exit 1).
local dir = debug.getinfo(1, "S").source:match("^@?(.*)/[^/]*$") or "."
local M = dofile(dir .. "/mtlib.lua")

M.run("reject.lua", function()
	local defaults = { SUBJECT = M.var("SUBJECT", "REJECT-ME"),
		EXPECT_REPLY = M.var("EXPECT_REPLY", "reject,replycode") }
	M.open()
	local msg = M.message_from_vars("", defaults)
	M.say("*** reject.lua: " .. msg.label)
	M.check("message", M.transaction(msg), "", defaults)
end)
