#!/usr/bin/env bash
# Installs, with apt-get, whatever docket needs to build and test that this
# Debian 12 machine lacks. Does nothing when all is present. Run as root.
set -euo pipefail

pkgs=(gcc make cmake pkg-config liblmdb-dev libsodium-dev libmsgpack-dev libuv1-dev
      libjansson-dev nettle-dev libxxhash-dev
      python3) # python3: the integration tests' LMDB edits, pty driver and JSON reads
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "docket: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "docket: these packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
