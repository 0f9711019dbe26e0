#!/usr/bin/env bash
# Installs what the demo, the tests and the benchmarks need on Debian 12, then checks for cargo.
# Idempotent: when everything is present it only runs dpkg-query (well under a second).
#
#   mariadb-server mariadb-client   upstream and downstream servers the tests start themselves
#   etcd-server etcd-client         the coordination store for multi-machine clusters and its tests
#   protobuf-compiler libprotobuf-dev   protoc and the well-known protos, needed to build etcd-client
#   sysbench mydumper               workload generator of the benchmarks; what the benchmark
#                                   compares the full migration with
#   iproute2                        `ip` and `tc`: the network-fault tests' namespaces and links
#
# The packages' own system services are not started by this install (the tests never use them):
# a temporary /usr/sbin/policy-rc.d denies service starts during apt-get, and is removed after.
set -euo pipefail

packages=(mariadb-server mariadb-client etcd-server etcd-client protobuf-compiler libprotobuf-dev sysbench mydumper iproute2)
missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} > 0)); then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: missing ${missing[*]} and no apt-get here; install them with your package manager" >&2
    exit 1
  fi
  as_root=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "setup: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    as_root=(sudo)
  fi
  echo "setup: installing ${missing[*]}"
  policy_created=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${as_root[@]}" chmod +x /usr/sbin/policy-rc.d
    policy_created=1
  fi
  remove_policy() { if [[ $policy_created == 1 ]]; then "${as_root[@]}" rm -f /usr/sbin/policy-rc.d; fi; }
  trap remove_policy EXIT
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  echo "setup: installed"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install the Rust toolchain (https://rustup.rs) and run again" >&2
  exit 1
fi
