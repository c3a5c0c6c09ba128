#!/usr/bin/env bash
# Installs what the tests, the demo and the benchmark need on a bare Debian
# machine: real servers from Debian packages (no mocks for Redis) and the Rust
# components used by CI. Safe to run repeatedly; installs only what is missing.
set -euo pipefail

packages=()
command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || packages+=(redis-tools)
command -v curl >/dev/null 2>&1 || packages+=(curl)
command -v openssl >/dev/null 2>&1 || packages+=(openssl)
# promtool (alert rule checks and unit tests) and amtool (Alertmanager config checks).
command -v promtool >/dev/null 2>&1 || packages+=(prometheus)
command -v amtool >/dev/null 2>&1 || packages+=(prometheus-alertmanager)
# The reference OpenMetrics parser (strict), for Debian's own python3.
/usr/bin/python3 -c 'import prometheus_client.openmetrics.parser' >/dev/null 2>&1 || packages+=(python3-prometheus-client)
if [[ "${WITH_BENCH:-0}" == 1 ]]; then
  command -v prometheus-redis-exporter >/dev/null 2>&1 || packages+=(prometheus-redis-exporter)
fi

if ((${#packages[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing ${packages[*]}; run as root or: sudo apt-get install -y ${packages[*]}" >&2
    exit 1
  fi
  echo "install-deps: apt-get install ${packages[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

# Debian's redis-server package starts a system instance on 6379; the tests do
# not use it (each test starts its own server on a free port).
for c in rustfmt clippy; do
  if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$c" >/dev/null 2>&1 || echo "install-deps: could not add $c" >&2
  fi
done
