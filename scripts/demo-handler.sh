#!/usr/bin/env bash
# The demo's render handler: reads the job from stdin, "renders" for 1–4 s in a few steps and
# says so on stdout (the job's page shows it, live while it runs), and fails now and then
# (insta-render more often, so its dead letters grow and the card turns degraded).
job="$(cat)"
echo "render ${JOB_ID:-job} (attempt ${JOB_ATTEMPT:-1}) on ${AGENT_ID:-this host}: $job"
steps=$((2 + RANDOM % 3))
for i in $(seq 1 "$steps"); do
  sleep "0.$((3 + RANDOM % 7))"
  echo "step $i/$steps: $((100 + RANDOM % 900)) tiles rendered"
done
case "${QUEUE:-}" in
  insta-render) fail_pct=35 ;;
  *) fail_pct=8 ;;
esac
if [ "$((RANDOM % 100))" -lt "$fail_pct" ]; then
  echo "render failed: GPU out of memory at tile $((RANDOM % 64)) of $job" >&2
  exit 1
fi
echo "done: wrote /renders/${JOB_ID:-job}.png"
