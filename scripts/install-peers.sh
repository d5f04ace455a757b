#!/usr/bin/env bash
# Install the real DICOM peers the tests and benchmarks run against, from Debian's
# packages: DCMTK, Orthanc and its DICOMweb plugin. Idempotent; needs root to install.
set -euo pipefail

need=()
command -v storescp >/dev/null && command -v dcmqrscp >/dev/null && command -v getscu >/dev/null || need+=(dcmtk)
command -v Orthanc >/dev/null || [ -x /usr/sbin/Orthanc ] || need+=(orthanc)
[ -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need+=(orthanc-dicomweb)
# Headless Chromium for the web page's tests (driven by Playwright, tests/integration/browser.py).
[ -x /usr/bin/chromium ] || need+=(chromium)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-peers: missing ${need[*]}; run as root, or: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
  echo "install-peers: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The packages' own service scripts must not start a system Orthanc on 4242/8042.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created_policy=1
  fi
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ "$created_policy" = 1 ] && rm -f "$policy"
fi

# A system Orthanc would hold the default ports; the tests start their own.
if pgrep -x Orthanc >/dev/null && pgrep -a -x Orthanc | grep -q /etc/orthanc; then
  pkill -x -f "/usr/sbin/Orthanc /etc/orthanc/" || true
fi
echo "install-peers: $(/usr/bin/chromium --version 2>/dev/null | head -n1)"
echo "install-peers: DCMTK $(storescp --version 2>/dev/null | head -n1 | awk '{print $3}'), Orthanc $(Orthanc --version 2>/dev/null | head -n1 | awk '{print $NF}')"

# PostgreSQL for the archive's index tests: the machine's own server on 127.0.0.1:5432.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null; then
    [ "$(id -u)" -eq 0 ] || { echo "install-peers: PostgreSQL is missing; run as root" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  pg_isready -q -h 127.0.0.1 -p 5432 || { echo "install-peers: PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }
fi
echo "install-peers: PostgreSQL $(psql --version | awk '{print $3}') on 127.0.0.1:5432"

# dcmjs-dimse (npm) on Node.js: the independent MPPS peer, both roles. Pinned by
# scripts/node-peers/package-lock.json, installed into the project's own .peers/node.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  [ "$(id -u)" -eq 0 ] || { echo "install-peers: Node.js is missing; run as root, or: sudo apt-get install nodejs npm" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
root=$(cd "$(dirname "$0")/.." && pwd)
peers="$root/.peers/node"
if ! cmp -s "$root/scripts/node-peers/package-lock.json" "$peers/package-lock.json" 2>/dev/null \
    || [ ! -f "$peers/node_modules/dcmjs-dimse/package.json" ]; then
  mkdir -p "$peers"
  cp "$root/scripts/node-peers/package.json" "$root/scripts/node-peers/package-lock.json" "$peers/"
  (cd "$peers" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
fi
echo "install-peers: Node.js $(node --version), dcmjs-dimse $(node -p "require('$peers/node_modules/dcmjs-dimse/package.json').version")"

# The OHIF Viewer build (npm package @ohif/app, pinned, its published SHA-1 checked) for
# `serve --ohif` and its browser test, unpacked into the project's own .peers/ohif.
ohif_version=3.13.2
ohif_sha1=26a51ffcc1704c30fff403258a1d7392e9a991f3
ohif="$root/.peers/ohif/$ohif_version"
if [ ! -f "$ohif/dist/index.html" ]; then
  work=$(mktemp -d)
  (cd "$work" && npm pack "@ohif/app@$ohif_version" --loglevel=error >/dev/null)
  echo "$ohif_sha1  $work/ohif-app-$ohif_version.tgz" | sha1sum -c --quiet - \
    || { echo "install-peers: @ohif/app $ohif_version does not match its published SHA-1" >&2; exit 1; }
  mkdir -p "$ohif"
  tar -xzf "$work/ohif-app-$ohif_version.tgz" -C "$ohif" --strip-components=1
  rm -rf "$work"
fi
echo "install-peers: OHIF Viewer $ohif_version in $ohif/dist"
