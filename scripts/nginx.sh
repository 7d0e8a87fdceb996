#!/usr/bin/env bash
# Runs Debian's nginx in front of a running Agent Office server, in the foreground.
#   scripts/nginx.sh [LISTEN] [UPSTREAM]    defaults: 127.0.0.1:8080 and 127.0.0.1:3000
# The site bundle must be built (scripts/run.sh or cargo leptos build --release).
source "$(dirname "$0")/lib.sh"
ensure_apt nginx
LISTEN="${1:-127.0.0.1:8080}"
UPSTREAM="${2:-127.0.0.1:3000}"
PREFIX="$ROOT/.run/nginx-${LISTEN//[:.]/-}"
mkdir -p "$PREFIX/tmp"
sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@LISTEN@|$LISTEN|g" -e "s|@UPSTREAM@|$UPSTREAM|g" \
    -e "s|@SITE_ROOT@|$ROOT/target/site|g" "$ROOT/deploy/nginx.conf" >"$PREFIX/nginx.conf"
say "nginx on http://$LISTEN/infra -> $UPSTREAM"
exec nginx -p "$PREFIX" -c "$PREFIX/nginx.conf" -g 'daemon off;'
