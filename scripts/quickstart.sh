#!/usr/bin/env bash
# A first run: builds the `streams` CLI, then creates a topic in a fresh data dir, produces
# keyed lines into it and reads them back, printing each step.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p streams-cli
streams="target/release/streams"
data_dir="$(mktemp -d)"
trap 'rm -rf "$data_dir"' EXIT

run() {
    echo "\$ streams $*"
    "$streams" --data-dir "$data_dir" "$@"
    echo
}

run topics create --topic greetings --partitions 3
echo "\$ printf 'en:hello\nfr:bonjour\nde:hallo\nes:hola\nen:hi\n' | streams produce --topic greetings --key-separator :"
printf 'en:hello\nfr:bonjour\nde:hallo\nes:hola\nen:hi\n' \
    | "$streams" --data-dir "$data_dir" produce --topic greetings --key-separator :
echo
run consume --topic greetings --from-beginning --print-key --print-partition --print-offset --timeout-ms 500
run topics describe --topic greetings
