#!/usr/bin/env bash
# Kafka's own Java clients and command-line tools, for the tests that run them against
# `streams serve` (streams-cli/tests/java_clients.rs).
#
# Copies kafka-clients, kafka-tools and their dependencies (versions in
# streams-cli/tests/java/pom.xml) from Maven Central into a folder under the target dir,
# compiles the test program RillKafkaClients.java against them, and prints the classpath
# on stdout. Both steps are skipped when their output is already there, so after the first
# run this needs neither the network nor Maven.
#
# Usage: scripts/kafka-java.sh [CACHE_DIR]   (default: $CARGO_TARGET_DIR/tmp/kafka-java,
#                                             or target/tmp/kafka-java)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
java_dir="$root/streams-cli/tests/java"
target=${CARGO_TARGET_DIR:-$root/target}
case "$target" in /*) ;; *) target="$root/$target" ;; esac
cache=${1:-$target/tmp/kafka-java}

version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$java_dir/pom.xml")
dir="$cache/$version"
mkdir -p "$dir"
# Tests run in parallel processes: one fetch and one compile at a time.
exec 9>"$dir/.lock"
flock 9

for tool in java javac; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: $tool is not installed (a JDK 17 or later is needed)" >&2
        exit 1
    fi
done

if [ ! -f "$dir/lib/.complete" ]; then
    if ! command -v mvn >/dev/null 2>&1; then
        echo "error: mvn (Maven) is not installed; it fetches Kafka's jars" >&2
        exit 1
    fi
    echo "fetching Kafka $version's Java clients and tools with Maven" >&2
    rm -rf "$dir/lib" "$dir/lib.partial"
    mvn -q -B -Dstyle.color=never -f "$java_dir/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$dir/lib.partial" >&2
    touch "$dir/lib.partial/.complete"
    mv "$dir/lib.partial" "$dir/lib"
fi

# The compiled program is named by its source's hash, so an edit compiles anew.
source_file="$java_dir/RillKafkaClients.java"
hash=$(sha256sum "$source_file" | cut -c1-16)
classes="$dir/classes-$hash"
if [ ! -f "$classes/RillKafkaClients.class" ]; then
    rm -rf "$classes.partial"
    mkdir -p "$classes.partial"
    javac -Xlint:all -d "$classes.partial" -cp "$dir/lib/*" "$source_file" >&2
    mv "$classes.partial" "$classes"
fi
echo "$classes:$dir/lib/*"
