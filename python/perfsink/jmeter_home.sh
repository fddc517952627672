#!/usr/bin/env bash
# Assembles a JMeter 5.6.3 home from Maven Central artifacts only (jmeter.apache.org's binary
# archive is not reachable from the build machines), following the layout NewDriver expects
# (../shared/reference/jmeter.md §5.2, the same split jmeter-maven-plugin makes):
#   bin/      ApacheJMeter_config unzipped (jmeter.properties, saveservice.properties, log4j2.xml,
#             templates, report-template ...) plus the launcher bin/ApacheJMeter-5.6.3.jar
#   lib/      jorphan and every runtime dependency of the modules, resolved transitively by Maven
#   lib/ext/  the ApacheJMeter_* modules (the jmeter-maven-plugin's default list)
# Run: java -jar "$home/bin/ApacheJMeter-5.6.3.jar" -n -t plan.jmx -l out.jtl -j jmeter.log
#
# Idempotent: the home is built in a temporary directory, then moved into place with a marker
# file written last; when the marker exists the script only prints the summary line.
# Prints one summary line; with --print-home also the home's path as the last line of stdout
# (home=$(scripts/jmeter-home.sh --print-home | tail -1)).
# This file is the one copy of the rule: it ships in the Python package (perfsink.tools.jmeter_home()
# runs it when neither JMETER_HOME nor `jmeter` on PATH is there); scripts/jmeter-home.sh wraps it.
set -euo pipefail

JMETER_VERSION=5.6.3
# maven-dependency-plugin pinned: Maven 3.8.7's default (2.8) predates options used here.
DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.6.1
CACHE="${PERFSINK_CACHE:-$HOME/.cache/perfsink}"
HOME_DIR="$CACHE/jmeter-$JMETER_VERSION"
MARKER="$HOME_DIR/.perfsink-jmeter-home"
# Modules that go to lib/ext (ApacheJMeter_config is unzipped, ApacheJMeter is the launcher).
MODULES=(bolt components core ftp functions http java jdbc jms junit ldap mail mongodb native tcp)

say() { printf '[jmeter-home] %s\n' "$*"; }
summary() {
  local jars size
  jars=$(find "$HOME_DIR" -name '*.jar' | wc -l)
  size=$(du -sh "$HOME_DIR" | cut -f1)
  say "JMeter $JMETER_VERSION at $HOME_DIR ($jars jars, $size); run: java -jar $HOME_DIR/bin/ApacheJMeter-$JMETER_VERSION.jar -n -t plan.jmx -l out.jtl"
}

print_home=0
[ "${1:-}" = "--print-home" ] && print_home=1

if [ -f "$MARKER" ]; then
  summary
  [ $print_home -eq 0 ] || echo "$HOME_DIR"
  exit 0
fi

command -v java >/dev/null 2>&1 || { echo "[jmeter-home] java is missing (JMeter 5.6.3 needs Java 8+)" >&2; exit 1; }
command -v mvn >/dev/null 2>&1 || { echo "[jmeter-home] mvn is missing (apt-get install maven)" >&2; exit 1; }
command -v unzip >/dev/null 2>&1 || { echo "[jmeter-home] unzip is missing (apt-get install unzip)" >&2; exit 1; }

mkdir -p "$CACHE"
# Two setups at once (parallel make runs) must not both move a home into place.
exec 9>"$CACHE/.jmeter-$JMETER_VERSION.lock"
flock 9
if [ -f "$MARKER" ]; then
  summary
  [ $print_home -eq 0 ] || echo "$HOME_DIR"
  exit 0
fi
work=$(mktemp -d "$CACHE/jmeter-$JMETER_VERSION.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)

# A throwaway POM whose dependencies are the launcher, jorphan, config and every module, so
# Maven resolves the transitive runtime closure exactly as JMeter's own POMs (and BOM) declare it.
deps=""
for a in ApacheJMeter ApacheJMeter_config jorphan "${MODULES[@]/#/ApacheJMeter_}"; do
  deps+="    <dependency><groupId>org.apache.jmeter</groupId><artifactId>$a</artifactId><version>$JMETER_VERSION</version></dependency>
"
done
cat >"$work/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.perfsink</groupId>
  <artifactId>jmeter-home</artifactId>
  <version>$JMETER_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
$deps  </dependencies>
</project>
EOF

say "resolving JMeter $JMETER_VERSION from Maven Central into $HOME_DIR (once)"
mvn_log="$work/mvn.log"
stage="$work/home"
mkdir -p "$stage/bin" "$stage/lib/ext" "$stage/lib/junit"
# One Maven run copies the whole runtime closure; the org.apache.jmeter artifacts are split out below.
timeout 900 mvn -B -q -f "$work/pom.xml" "$DEP_PLUGIN:copy-dependencies" \
  -DincludeScope=runtime -DoutputDirectory="$stage/lib" >"$mvn_log" 2>&1 || {
  echo "[jmeter-home] mvn failed (log follows)" >&2; tail -40 "$mvn_log" >&2; exit 1; }

unzip -q -o "$stage/lib/ApacheJMeter_config-$JMETER_VERSION.jar" 'bin/*' -d "$stage"
rm "$stage/lib/ApacheJMeter_config-$JMETER_VERSION.jar"
mv "$stage/lib/ApacheJMeter-$JMETER_VERSION.jar" "$stage/bin/"
for m in "${MODULES[@]}"; do
  mv "$stage/lib/ApacheJMeter_$m-$JMETER_VERSION.jar" "$stage/lib/ext/"
done
# jorphan stays in lib/; any other JMeter artifact there would mean the module list is stale.
leftover=$(cd "$stage/lib" && ls ApacheJMeter*.jar 2>/dev/null || true)
if [ -n "$leftover" ]; then
  echo "[jmeter-home] unexpected JMeter artifacts (add them to MODULES?): $leftover" >&2
  exit 1
fi
[ -f "$stage/lib/jorphan-$JMETER_VERSION.jar" ] || { echo "[jmeter-home] jorphan missing" >&2; exit 1; }

# The listing doubles as the marker's content: what this home is made of.
{
  echo "# JMeter $JMETER_VERSION assembled by scripts/jmeter-home.sh from Maven Central, $(date -u +%FT%TZ), $(( $(date +%s) - start )) s"
  (cd "$stage" && find bin lib -name '*.jar' | LC_ALL=C sort)
} >"$stage/.perfsink-jmeter-home.tmp"

# A half-built home from an interrupted run never carries the marker, so it is replaced.
rm -rf "$HOME_DIR"
mv "$stage" "$HOME_DIR"
mv "$HOME_DIR/.perfsink-jmeter-home.tmp" "$MARKER"
summary
[ $print_home -eq 0 ] || echo "$HOME_DIR"
