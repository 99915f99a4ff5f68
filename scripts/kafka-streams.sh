#!/usr/bin/env bash
# Kafka Streams' own word count (examples/benches/kafka-streams), the Java reference that our
# word count is compared with on the same Apache Kafka broker (examples::kafka_streams).
#
# Builds the Maven project (Kafka Streams of the version in its pom.xml, fetched from Maven
# Central) into a folder under the target dir, copies its runtime dependencies beside the
# jar, and prints the classpath (the jar and its dependencies) on stdout's last line. The
# build is named by a hash of the pom and the sources, and skipped when it is already there,
# so after the first run this needs neither the network nor Maven.
#
# Usage: scripts/kafka-streams.sh [CACHE_DIR]   (default: $CARGO_TARGET_DIR/tmp/kafka-streams,
#                                                or target/tmp/kafka-streams)
# Then: java -cp "$(scripts/kafka-streams.sh | tail -n1)" dev.rill.benches.KafkaStreamsWordCount \
#           BOOTSTRAP APP_ID at_least_once|exactly_once_v2 THREADS COMMIT_MS STATE_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
project="$root/examples/benches/kafka-streams"
target=${CARGO_TARGET_DIR:-$root/target}
case "$target" in /*) ;; *) target="$root/$target" ;; esac
cache=${1:-$target/tmp/kafka-streams}

version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$project/pom.xml")
dir="$cache/$version"
mkdir -p "$dir"
# Tests and benchmarks may run it at once: one build at a time.
exec 9>"$dir/.lock"
flock 9

if ! command -v java >/dev/null 2>&1; then
    echo "error: java is not installed (Kafka Streams $version needs a JRE 17 or later)" >&2
    exit 1
fi

# The build is named by the hash of what it is made of, so an edit builds anew.
hash=$(cd "$project" && find pom.xml src -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
build="$dir/build-$hash"
if [ ! -f "$build/.complete" ]; then
    for tool in javac mvn; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "error: $tool is not installed; building Kafka Streams' word count needs a JDK 17 or later and Maven" >&2
            exit 1
        fi
    done
    echo "building Kafka Streams $version's word count with Maven" >&2
    rm -rf "$build" "$build.partial"
    mvn -q -B -Dstyle.color=never -f "$project/pom.xml" -DbuildDir="$build.partial" \
        package dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$build.partial/lib" >&2
    touch "$build.partial/.complete"
    mv "$build.partial" "$build"
fi
echo "$build/kafka-streams-wordcount-1.jar:$build/lib/*"
