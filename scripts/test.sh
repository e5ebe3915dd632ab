#!/usr/bin/env bash
# The test command (`npm test`): builds, type-checks, runs the static checks of
# `npm run lint` (ESLint, layers, Prettier, the console's types), starts a private
# PostgreSQL when none is given, runs every vitest suite and ends with one line
# "N passed, N failed". A failed build or check ends the run at once with
# "0 passed, 1 failed", so the last line always says whether the run failed.
set -uo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d /tmp/upshift-tests.XXXXXX)
cleanup() {
  [ -n "${started_pg:-}" ] && bash test/support/pg.sh stop "$work/pg"
  rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${UPSHIFT_TEST_PG_URL:-}" ]; then
  if out=$(bash test/support/pg.sh start "$work/pg" 2>&1); then
    eval "$(echo "$out" | tail -n 1)"
    export UPSHIFT_TEST_PG_URL
    started_pg=1
    echo "PostgreSQL for the tests: $UPSHIFT_TEST_PG_URL"
  else
    echo "PostgreSQL could not be started: $out" >&2
    if [ "${CI:-}" = "true" ]; then echo "0 passed, 1 failed"; exit 1; fi
    echo "(the PostgreSQL suites are skipped outside CI)" >&2
  fi
fi

npm run build --silent || { echo "0 passed, 1 failed"; exit 1; }
npx tsc -p tsconfig.json --noEmit || { echo "type check failed"; echo "0 passed, 1 failed"; exit 1; }
bash scripts/lint.sh || { echo "0 passed, 1 failed"; exit 1; }

# Everything but the real-host suites runs two files at a time; the real-host suites
# (several dockerds each) then run one at a time, so that they do not starve each other.
heavy=(test/hosts test/swarm)
if [ $# -gt 0 ]; then
  npx vitest run --reporter=default --reporter=json --outputFile.json="$work/results-1.json" "$@"
  status=$?
else
  npx vitest run --reporter=default --reporter=json --outputFile.json="$work/results-1.json" --exclude 'test/hosts/**' --exclude 'test/swarm/**'
  status=$?
  npx vitest run --reporter=default --reporter=json --outputFile.json="$work/results-2.json" --maxWorkers=1 --no-file-parallelism "${heavy[@]}"
  heavy_status=$?
  [ $status -eq 0 ] && status=$heavy_status
fi
node -e '
  const fs = require("fs");
  let passed = 0, failed = 0, files = 0;
  const failures = [];
  const firstLines = (text) => String(text ?? "").split("\n").slice(0, 3).join(" | ").slice(0, 400);
  for (const file of process.argv.slice(1)) {
    if (!fs.existsSync(file)) { failed++; continue; }
    const r = JSON.parse(fs.readFileSync(file, "utf8"));
    files++;
    passed += r.numPassedTests;
    failed += r.numFailedTests + r.testResults.filter((s) => s.status === "failed" && s.assertionResults.length === 0).length;
    for (const suite of r.testResults) {
      const name = suite.name.replace(process.cwd() + "/", "");
      if (suite.status === "failed" && suite.assertionResults.length === 0) failures.push(`${name}: ${firstLines(suite.message)}`);
      for (const t of suite.assertionResults) {
        if (t.status === "failed") failures.push(`${name} > ${t.fullName}: ${firstLines((t.failureMessages ?? []).join("\n"))}`);
      }
    }
  }
  // The names of the failed tests come last, just above the summary, so that the end of
  // a long log says what failed.
  if (failures.length > 0) console.log(["failed:", ...failures.map((f) => "  " + f)].join("\n"));
  console.log(`${passed} passed, ${failed} failed`);
' "$work/results-1.json" $( [ $# -gt 0 ] || echo "$work/results-2.json" )
exit $status
