#!/usr/bin/env bash
# Kafka Streams as the oracle of the DSL (tests/oracle/kafka-streams-oracle): a Java program
# that runs JSON-described topologies through Kafka Streams' own TopologyTestDriver, which
# tests/oracle.rs compares with our DSL on random inputs. See docs/oracle.md.
#
# Builds the Maven project (Kafka Streams and its test utilities of the version in its
# pom.xml, fetched from Maven Central) into a folder under the target dir, copies its runtime
# dependencies beside the jar, and prints the classpath (the jar and its dependencies) on
# stdout's last line. The build is named by a hash of the pom and the sources, and skipped
# when it is already there, so after the first run this needs neither the network nor Maven.
#
# Usage: scripts/kafka-streams-oracle.sh [CACHE_DIR]   (default:
#            $CARGO_TARGET_DIR/tmp/kafka-streams-oracle, or target/tmp/kafka-streams-oracle)
# Then: java -cp "$(scripts/kafka-streams-oracle.sh | tail -n1)" dev.rill.oracle.Oracle
#       (one JSON case per line on stdin, one JSON result per line on stdout)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
project="$root/tests/oracle/kafka-streams-oracle"
target=${CARGO_TARGET_DIR:-$root/target}
case "$target" in /*) ;; *) target="$root/$target" ;; esac
cache=${1:-$target/tmp/kafka-streams-oracle}

version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$project/pom.xml")
dir="$cache/$version"
mkdir -p "$dir"
# Several test binaries may run it at once: one build at a time.
exec 9>"$dir/.lock"
flock 9

if ! command -v java >/dev/null 2>&1; then
    echo "error: java is not installed (the Kafka Streams $version oracle needs a JRE 17 or later)" >&2
    exit 1
fi

# The build is named by the hash of what it is made of, so an edit builds anew.
hash=$(cd "$project" && find pom.xml src -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
build="$dir/build-$hash"
if [ ! -f "$build/.complete" ]; then
    for tool in javac mvn; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "error: $tool is not installed; building the Kafka Streams oracle needs a JDK 17 or later and Maven" >&2
            exit 1
        fi
    done
    echo "building the Kafka Streams $version oracle with Maven" >&2
    rm -rf "$build" "$build.partial"
    mvn -q -B -Dstyle.color=never -f "$project/pom.xml" -DbuildDir="$build.partial" \
        package dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$build.partial/lib" >&2
    touch "$build.partial/.complete"
    mv "$build.partial" "$build"
fi
echo "$build/kafka-streams-oracle-1.jar:$build/lib/*"
