#!/usr/bin/env bash
# Apache Kafka's broker, for the benchmarks and tests that run on Apache Kafka itself: the
# examples library's fixture (examples/src/apache_kafka.rs) starts it in KRaft mode on
# loopback, for the wire benchmark (examples/benches/wire.rs) among others.
#
# Copies kafka_2.13 (the broker and its controller) and its runtime dependencies (versions
# in examples/benches/kafka-broker/pom.xml) from Maven Central into a folder under the
# target dir and prints the classpath on stdout. The copy is skipped when it is already
# there, so after the first run this needs neither the network nor Maven.
#
# Usage: scripts/kafka-broker.sh [CACHE_DIR]   (default: $CARGO_TARGET_DIR/tmp/kafka-broker,
#                                               or target/tmp/kafka-broker)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pom="$root/examples/benches/kafka-broker/pom.xml"
target=${CARGO_TARGET_DIR:-$root/target}
case "$target" in /*) ;; *) target="$root/$target" ;; esac
cache=${1:-$target/tmp/kafka-broker}

version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")
dir="$cache/$version"
mkdir -p "$dir"
# One fetch at a time.
exec 9>"$dir/.lock"
flock 9

if ! command -v java >/dev/null 2>&1; then
    echo "error: java is not installed (Kafka $version needs a JRE 17 or later)" >&2
    exit 1
fi

if [ ! -f "$dir/lib/.complete" ]; then
    if ! command -v mvn >/dev/null 2>&1; then
        echo "error: mvn (Maven) is not installed; it fetches Kafka's jars" >&2
        exit 1
    fi
    echo "fetching Apache Kafka $version's broker with Maven" >&2
    rm -rf "$dir/lib" "$dir/lib.partial"
    mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$dir/lib.partial" >&2
    touch "$dir/lib.partial/.complete"
    mv "$dir/lib.partial" "$dir/lib"
fi
echo "$dir/lib/*"
