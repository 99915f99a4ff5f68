#!/usr/bin/env bash
# The SIGKILL soak of the word count job at full length: the `wordcount` binary runs under
# exactly_once_v2 over one data dir and is killed with SIGKILL again and again, first while it
# loads its input, then at random moments from the first millisecond of each run, restarted
# each time, and finally run to the end. It passes if `text-lines` holds each line of the input
# exactly once and every committed count is exact. This is the test
# `exactly_once_v2_survives_sigkills_from_the_first_millisecond` of
# examples/tests/wordcount_kill.rs, which `cargo test` runs with 20 kills.
#
# Usage: scripts/kill-soak.sh [--release] [KILLS]
#   KILLS      random kills after those aimed at the load (default 100, or RILL_KILL_SOAK_KILLS)
#   --release  build and kill the optimized binary (faster runs, so more work per kill)
# Environment:
#   RILL_KILL_SOAK_LINES         lines of the generated input (default 150000)
#   RILL_KILL_SOAK_MAX_DELAY_MS  the latest a random kill lands after its run starts (default 600)
#   RILL_KILL_SOAK_SEED          replays the delays of an earlier soak (each soak prints its seed)
set -euo pipefail
cd "$(dirname "$0")/.."

profile=()
kills="${RILL_KILL_SOAK_KILLS:-100}"
for arg in "$@"; do
    case "$arg" in
        --release) profile=(--release) ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *[!0-9]*|'') echo "error: unexpected argument '$arg' (try --help)" >&2; exit 2 ;;
        *) kills="$arg" ;;
    esac
done
if [ "$kills" -lt 1 ]; then
    echo "error: KILLS must be at least 1" >&2
    exit 2
fi

echo "== kill soak: $kills random SIGKILLs of the wordcount binary under exactly_once_v2" >&2
RILL_KILL_SOAK_KILLS="$kills" exec cargo test ${profile[@]+"${profile[@]}"} --locked -p examples \
    --test wordcount_kill -- --exact exactly_once_v2_survives_sigkills_from_the_first_millisecond \
    --nocapture
