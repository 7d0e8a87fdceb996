#!/usr/bin/env bash
# The demo's render handler: reads the job from stdin, "renders" for 1–4 s, and fails now and
# then (insta-render more often, so its dead letters grow and the card turns degraded).
job="$(cat)"
sleep "$((1 + RANDOM % 4)).$((RANDOM % 10))"
case "${QUEUE:-}" in
  insta-render) fail_pct=35 ;;
  *) fail_pct=8 ;;
esac
if [ "$((RANDOM % 100))" -lt "$fail_pct" ]; then
  echo "render failed for $job" >&2
  exit 1
fi
