-- accept.lua - one complete transaction that the milter must accept, adding a
-- header (default: X-Inspect-Verdict with a value starting "accept"), without
-- quarantining it. Uses miltertest(8) (Debian package "miltertest").
--
--   MILTER_SOCKET=inet:8897@127.0.0.1 miltertest -s tests/mta/miltertest/accept.lua
--   miltertest -D MILTER_SOCKET=unix:/run/m.sock -D MESSAGE_FILE=tests/fixtures/clean.eml \
--              -s tests/mta/miltertest/accept.lua
--
-- Variables (environment, or -D NAME=VALUE which wins):
--   the message:  MESSAGE_FILE (an .eml: its headers and body are sent), or
--                 SUBJECT (default "miltertest clean message") + BODY or BODY_FILE;
--                 FROM, RCPT (comma list), MAIL_ARGS (ESMTP args, e.g. "SIZE=1234")
--   expectations: EXPECT_REPLY (default accept,continue), EXPECT_AT (default eom),
--                 EXPECT_HEADER (default X-Inspect-Verdict; "" = none),
--                 EXPECT_VALUE (exact) / EXPECT_VALUE_LIKE (Lua pattern, default ^accept),
--                 EXPECT_NO_HEADER, EXPECT_SMTP, EXPECT_QUARANTINE (default 0 = must not)
--   connection:   see mtlib.lua (MILTER_SOCKET, TLS_VERSION, REQUIRE_PROTO, ...)
-- Output: one line per check, last line "PASS accept.lua" (exit 0) or
-- "FAIL accept.lua: <reason>" (exit 1).
local dir = debug.getinfo(1, "S").source:match("^@?(.*)/[^/]*$") or "."
local M = dofile(dir .. "/mtlib.lua")

M.run("accept.lua", function()
	local defaults = { SUBJECT = M.var("SUBJECT", "miltertest clean message"),
		EXPECT_REPLY = M.var("EXPECT_REPLY", "accept,continue"),
		EXPECT_HEADER = M.var("EXPECT_HEADER", "X-Inspect-Verdict"),
		EXPECT_VALUE_LIKE = M.var("EXPECT_VALUE_LIKE", M.var("EXPECT_VALUE", "") == "" and "^accept" or ""),
		EXPECT_QUARANTINE = M.var("EXPECT_QUARANTINE", "0") }
	M.open()
	local msg = M.message_from_vars("", defaults)
	M.say("*** accept.lua: " .. msg.label)
	M.check("message", M.transaction(msg), "", defaults)
end)
