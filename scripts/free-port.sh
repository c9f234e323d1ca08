#!/bin/sh
# Prints a loopback TCP port for a test server: nobody listens on it (curl exit 7, connection
# refused) and it lies below the kernel's ephemeral range, so no outgoing connection of this
# machine can be holding it when the server binds it a moment later.
#   scripts/free-port.sh [PORT...]   a port that is none of the PORTs given
set -eu
low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "$low" -gt 12000 ] 2>/dev/null || low=32768
while :; do
    p=$((10000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % (low - 10000)))
    case " $* " in *" $p "*) continue ;; esac
    rc=0
    curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$p/" 2>/dev/null || rc=$?
    [ $rc -eq 7 ] && { echo "$p"; exit 0; }
done
