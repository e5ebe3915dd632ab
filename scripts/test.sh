#!/usr/bin/env bash
# The test command (`npm test`): builds, type-checks, starts a private PostgreSQL when
# none is given, runs every vitest suite and ends with one line "N passed, N failed".
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

npx vitest run --reporter=default --reporter=json --outputFile.json="$work/results.json" "$@"
status=$?
if [ -f "$work/results.json" ]; then
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const failedSuites = r.testResults.filter((s) => s.status === "failed" && s.assertionResults.length === 0).length;
    console.log(`${r.numPassedTests} passed, ${r.numFailedTests + failedSuites} failed`);
  ' "$work/results.json"
else
  echo "0 passed, 1 failed"
fi
exit $status
