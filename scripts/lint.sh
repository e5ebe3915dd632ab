#!/usr/bin/env bash
# The static checks (`npm run lint`, and the start of `npm test`): ESLint, the layering
# and import cycles of scripts/layers.mjs, Prettier, and the console's type check (the
# rest of the code is type-checked by tsconfig.json). Runs them all, names each that
# failed, and exits 1 when any did.
set -uo pipefail
cd "$(dirname "$0")/.."

failed=()
check() {
  local name=$1
  shift
  echo "── $name"
  "$@" || failed+=("$name")
}

check eslint npx eslint src test scripts bench web
check layers node scripts/check-layers.mjs
check prettier npx prettier --check src test scripts bench web
check "web type check" npx tsc -p web/tsconfig.json --noEmit

if [ ${#failed[@]} -gt 0 ]; then
  echo "static checks failed: $(IFS=,; echo "${failed[*]}" | sed 's/,/, /g')" >&2
  exit 1
fi
echo "static checks passed: eslint, layers, prettier, web type check"
