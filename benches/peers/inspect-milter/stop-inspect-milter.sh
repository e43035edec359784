#!/bin/bash
source "$(dirname "$0")/../common.sh"
stop_pidfile "$PEER_RUN_BASE/inspect-milter/pid"
