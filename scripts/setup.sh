#!/usr/bin/env bash
# Idempotent machine setup for gui-recorder (Debian 12, as root).
# Installs only what is missing; when everything is present it returns in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
log() { printf '[setup] %s\n' "$*" >&2; }

APT_PACKAGES=(xvfb x11vnc xterm xdotool x11-utils imagemagick freerdp2-shadow-x11 winpr-utils
  tesseract-ocr tesseract-ocr-eng chromium fonts-dejavu-core tk python3-tk postgresql-15)
GUACD_PACKAGES=(guacd libguac-client-rdp0 libguac-client-vnc0 libguac-client-ssh0)

missing=()
for p in "${APT_PACKAGES[@]}" "${GUACD_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  # guacd is not in Debian 12: take 1.3.0 from Debian 11 at low priority (ENVIRONMENT.md).
  if [ ! -f /etc/apt/sources.list.d/bullseye-guacd.sources ]; then
    cat > /etc/apt/sources.list.d/bullseye-guacd.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bullseye
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    cat > /etc/apt/preferences.d/bullseye-guacd <<'PIN'
Package: *
Pin: release n=bullseye
Pin-Priority: 100
PIN
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Packages must not start their own daemons (guacd, PostgreSQL): we start what we need, by PID.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null
  # pkg/bullseye (not -t bullseye): only guacd comes from bullseye, its libraries
  # (FreeRDP 2.x) stay Debian 12's, which freerdp2-shadow-x11 also needs.
  apt-get install -y -qq "${GUACD_PACKAGES[@]/%//bullseye}" >/dev/null
fi

# MinIO is not packaged: build it once with the Go toolchain and cache the binary.
MINIO_BIN="${GUI_RECORDER_MINIO_BIN:-$HOME/go/bin/minio}"
if [ ! -x "$MINIO_BIN" ]; then
  log "building MinIO with go install (first time only, takes minutes)"
  GOFLAGS=-mod=mod go install github.com/minio/minio@latest
fi

# Python virtualenv with the pinned dependencies; rebuilt only when the pins change.
stamp_src=$(cat pyproject.toml requirements.lock 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.stamp 2>/dev/null)" != "$stamp_src" ]; then
  log "creating the virtualenv"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements.lock
  .venv/bin/pip install -q --no-deps -e .
  echo "$stamp_src" > .venv/.stamp
fi

# guacamole-common-js for the web client and the player tests, served locally (no CDN).
GJS=web/vendor/guacamole-common.js
if [ ! -s "$GJS" ]; then
  log "fetching guacamole-common-js 1.6.0 from npm"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack -q @glokon/guacamole-common-js@1.6.0 >/dev/null && tar xzf ./*.tgz)
  mkdir -p web/vendor
  # The CommonJS build ends with `module.exports = Guacamole;`: give browsers a `module`.
  { echo 'var module = {exports: {}};'; cat "$tmp/package/lib/cjs/guacamole.js"; } > "$GJS.tmp"
  mv "$GJS.tmp" "$GJS"
  rm -rf "$tmp"
fi
log "ready"
