#!/usr/bin/env bash
# Installs Debian's Prometheus tools for the collector-bundle tests: `prometheus` (the server
# and promtool) and `prometheus-alertmanager` (amtool). Idempotent: does nothing when the
# commands are already on PATH. Safe without systemd: package scripts are told not to start
# services (policy-rc.d answers 101 "action forbidden"), and nothing waits on stdin.
set -euo pipefail

need=()
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || need+=(prometheus)
command -v amtool >/dev/null 2>&1 || need+=(prometheus-alertmanager)
if [ "${#need[@]}" -eq 0 ]; then
    echo "prometheus tools: already installed ($(promtool --version 2>&1 | head -n1))"
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "prometheus tools: cannot install ${need[*]} (needs root and apt-get);" \
         "the promtool/live Prometheus tests will be skipped" >&2
    exit 0
fi

policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)
timeout 300 apt-get update -qq </dev/null
timeout 600 apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${need[@]}" </dev/null >/dev/null
echo "prometheus tools: installed ${need[*]} in $(($(date +%s) - start)) s" \
     "($(promtool --version 2>&1 | head -n1))"
