#!/usr/bin/env bash
# smg as the client under test of the official MCP conformance suite's client mode:
#
#   npx @modelcontextprotocol/conformance client --command "scripts/conformance-client.sh" --scenario NAME
#
# The suite starts a scenario server and runs this with its URL as the last argument (and
# MCP_CONFORMANCE_SCENARIO / MCP_CONFORMANCE_CONTEXT in the environment). This starts
# `smg serve` with that URL as its only upstream (passthrough; for auth/* scenarios with
# the MCP authorization flow on and the scenario's client credentials), then drives every
# action through smg's downstream side with the MCP SDK client: list and call every tool
# (arguments made from each input schema), list and read every resource, list and get
# every prompt. What the scenario server sees is what smg sends as a client.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec node "$here/tests/fixtures/conformance_client.mjs" "$@"
