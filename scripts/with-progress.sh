#!/usr/bin/env bash
# with-progress.sh LABEL COMMAND...: run COMMAND; while it runs, print "LABEL: still running... N s"
# every PROGRESS_EVERY seconds (30), so that a long and quiet step (pip building llama.cpp from
# source for 5 to 16 minutes) shows that it is alive. Exits with COMMAND's status.
set -u
label=$1
shift
every=${PROGRESS_EVERY:-30}
start=$(date +%s)
"$@" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid"; exit 130' INT TERM
next=$every
while kill -0 "$pid" 2>/dev/null; do
  sleep 1
  elapsed=$(( $(date +%s) - start ))
  if [ "$elapsed" -ge "$next" ] && kill -0 "$pid" 2>/dev/null; then
    echo "$label: still running... ${elapsed} s"
    next=$(( next + every ))
  fi
done
wait "$pid"
