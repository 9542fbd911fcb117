#!/usr/bin/env bash
# Runs every test of omadmd: unit tests beside the code and the integration tests under
# tests/ that run the real binaries on scratch directories.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --locked --workspace --all-targets "$@"
# The examples in the rustdoc of the crates (omadm-proto's are the TS's own).
cargo test --locked --workspace --doc
