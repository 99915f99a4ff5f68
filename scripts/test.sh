#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, unit, property, integration and
# crash tests, then doc tests. Installs what it needs; relies on nothing left on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is not installed (install Rust with rustup first)" >&2
    exit 1
fi
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    echo "installing the rustfmt and clippy components" >&2
    rustup component add rustfmt clippy
fi
if ! command -v make >/dev/null 2>&1 || ! command -v cc >/dev/null 2>&1; then
    # The rdkafka crate builds librdkafka from source: its configure script, make and a C
    # compiler (no cmake).
    echo "installing make and a C compiler (build-essential)" >&2
    apt-get update -qq && apt-get install -y -qq build-essential
fi
if ! command -v kcat >/dev/null 2>&1; then
    # Debian's kcat (librdkafka): a Kafka client no one here wrote, for `streams serve`.
    echo "installing kcat" >&2
    apt-get update -qq && apt-get install -y -qq kcat
fi
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -m ensurepip --version >/dev/null 2>&1; then
    # kafka-python's admin client test makes a virtualenv and pip-installs kafka-python.
    echo "installing python3, python3-venv and python3-pip" >&2
    apt-get update -qq && apt-get install -y -qq python3 python3-venv python3-pip
fi
if ! command -v javac >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
    # Kafka's own Java clients and tools run against `streams serve`; Maven fetches them.
    echo "installing a JDK and Maven" >&2
    apt-get update -qq && apt-get install -y -qq default-jdk-headless maven
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    # streams-cli's kafkajs test runs a script with node and installs kafkajs with npm ci.
    echo "installing nodejs and npm" >&2
    apt-get update -qq && apt-get install -y -qq nodejs npm
fi
if ! command -v go >/dev/null 2>&1; then
    # streams-cli's franz-go test builds a Go program (franz-go needs Go 1.26).
    echo "installing golang-go" >&2
    apt-get update -qq && apt-get install -y -qq golang-go
fi
go_minor=$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
if [ "${go_minor:-0}" -lt 21 ]; then
    # Go 1.21 and later fetch the toolchain a go.mod asks for (GOTOOLCHAIN=auto); older ones
    # cannot build franz-go.
    echo "error: $(go version) is too old for the franz-go test: install Go 1.21 or later" >&2
    exit 1
fi
for tool in unshare mount; do
    # The read-only and full file system tests run the CLI in a private mount namespace.
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "installing util-linux and mount (for $tool)" >&2
        apt-get update -qq && apt-get install -y -qq util-linux mount
    fi
done
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "installing cargo-nextest from crates.io" >&2
    cargo install cargo-nextest --locked
fi

echo "== Kafka's Java clients and tools (Maven Central, cached under the target dir)"
bash scripts/kafka-java.sh >/dev/null
echo "== Apache Kafka's broker, Kafka Streams' word count and the Kafka Streams oracle (Maven Central, cached under the target dir)"
bash scripts/kafka-broker.sh >/dev/null
bash scripts/kafka-streams.sh >/dev/null
bash scripts/kafka-streams-oracle.sh >/dev/null

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo nextest (unit, property, integration and crash tests)"
cargo nextest run --workspace --locked --no-fail-fast
echo "== doc tests"
cargo test --workspace --doc --locked
