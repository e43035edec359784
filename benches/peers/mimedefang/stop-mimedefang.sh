#!/bin/bash
source "$(dirname "$0")/../common.sh"
RUN="$PEER_RUN_BASE/mimedefang"
stop_pidfile "$RUN/mimedefang.pid"
stop_pidfile "$RUN/multiplexor.pid"
rm -f "$RUN/mimedefang-multiplexor.sock" "$RUN/mimedefang-milter.sock"
