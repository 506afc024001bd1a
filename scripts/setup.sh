#!/usr/bin/env bash
# Idempotent machine setup for gui-recorder (Debian 12, as root).
# Installs only what is missing; when everything is present it returns in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
log() { printf '[setup] %s\n' "$*" >&2; }

APT_PACKAGES=(xvfb x11vnc xterm xdotool x11-utils imagemagick freerdp2-shadow-x11 winpr-utils
  tesseract-ocr tesseract-ocr-eng chromium fonts-dejavu-core tk python3-tk postgresql-15 maven unzip
  # This wave's real parts: the SIEM receiver, the directory, the HSM token, the SSH target, the load
  # balancer, and the OCR languages with the fonts a target needs to draw them.
  rsyslog rsyslog-gnutls slapd ldap-utils softhsm2 openssh-server haproxy
  tesseract-ocr-deu tesseract-ocr-fra tesseract-ocr-spa tesseract-ocr-rus tesseract-ocr-chi-sim tesseract-ocr-jpn
  fonts-noto-cjk
  # English words for bench/ocr_fonts.py to show (picked at random from the dictionary).
  wamerican)
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

# The OCR languages screens are read in (issue 15): a pack that is missing would fail every index job of a
# connection that names it, so setup checks what tesseract itself lists, not only the package state.
OCR_LANGUAGES=(eng deu fra spa rus chi_sim jpn)
installed_langs=$(tesseract --list-langs 2>/dev/null | tail -n +2)
for lang in "${OCR_LANGUAGES[@]}"; do
  grep -qx "$lang" <<<"$installed_langs" || { log "tesseract has no '$lang' language data"; exit 1; }
done

# MinIO is not packaged: build it once with the Go toolchain and cache the binary.
# Pinned to the version ../shared/ENVIRONMENT.md verified (no floating tag); a cached
# binary of another version is rebuilt, so every machine runs the same server.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_BIN="${GUI_RECORDER_MINIO_BIN:-$HOME/go/bin/minio}"
# A binary named by GUI_RECORDER_MINIO_BIN is the operator's choice: only its presence is checked.
# (grep without -q: under pipefail its early exit would fail the pipeline and force a rebuild.)
if [ ! -x "$MINIO_BIN" ] || { [ -z "${GUI_RECORDER_MINIO_BIN:-}" ] && ! go version -m "$MINIO_BIN" 2>/dev/null \
    | grep "^[[:space:]]*mod[[:space:]]*github.com/minio/minio[[:space:]]*$MINIO_VERSION[[:space:]]" >/dev/null; }; then
  log "building MinIO $MINIO_VERSION with go install (first time only, takes minutes)"
  GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION"
fi

# The demo desktops (Xvfb, xterm, x11vnc, freerdp-shadow) run as this unprivileged
# user, so a demo session is no root shell beside var/ (issue 10). Its home is
# empty (no skeleton files) and outside the project; the xterm starts there.
DEMO_USER=gr-demo
DEMO_HOME=/var/lib/gr-demo
if ! id -u "$DEMO_USER" >/dev/null 2>&1; then
  log "creating the demo desktop user $DEMO_USER"
  useradd --system --user-group --no-create-home --home-dir "$DEMO_HOME" --shell /bin/bash "$DEMO_USER"
fi
if [ ! -d "$DEMO_HOME" ]; then
  install -d -m 0700 -o "$DEMO_USER" -g "$DEMO_USER" "$DEMO_HOME"
fi
# X servers run by an unprivileged user need the shared socket directory to exist.
[ -d /tmp/.X11-unix ] || install -d -m 1777 /tmp/.X11-unix

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

# guacamole-common-js for the web client and the player tests, served locally (no CDN):
# Apache's own build from Maven Central, checked against the digest pinned here
# (Maven Central publishes a .sha1 beside the zip, which mvn checks strictly too).
GJS_VERSION=1.6.0
GJS_ZIP_SHA512=228c08dd0b3e860bcbae1dbccfdcbe55652bebed2aec4c59b738ee025d1354d1e35983459bf25c57495c733d6502ec1e469e9bcb596235a3eac96b62345e1bac
# all.js inside that zip, byte for byte: a file with another digest (e.g. the npm
# republish an older setup fetched) is stale and replaced.
GJS_SHA256=b31a4384599f7498bcabf91ed934124ea5df30231310aa78407d3c3754287633
GJS=web/vendor/guacamole-common.js
if [ "$(sha256sum "$GJS" 2>/dev/null | cut -d' ' -f1)" != "$GJS_SHA256" ]; then
  log "fetching guacamole-common-js $GJS_VERSION (Apache, Maven Central)"
  mvn -q -B -Dstyle.color=never --strict-checksums dependency:get -Dtransitive=false \
    -Dartifact="org.apache.guacamole:guacamole-common-js:$GJS_VERSION:zip" >/dev/null
  zip="$HOME/.m2/repository/org/apache/guacamole/guacamole-common-js/$GJS_VERSION/guacamole-common-js-$GJS_VERSION.zip"
  echo "$GJS_ZIP_SHA512  $zip" | sha512sum --quiet -c - \
    || { log "guacamole-common-js-$GJS_VERSION.zip does not match the pinned SHA-512: refusing it"; exit 1; }
  mkdir -p web/vendor
  unzip -p "$zip" guacamole-common-js/all.js > "$GJS.tmp"
  echo "$GJS_SHA256  $GJS.tmp" | sha256sum --quiet -c - \
    || { log "all.js in the verified zip has an unexpected digest"; rm -f "$GJS.tmp"; exit 1; }
  mv "$GJS.tmp" "$GJS"
  printf 'org.apache.guacamole:guacamole-common-js:%s:zip sha512=%s\n' "$GJS_VERSION" "$GJS_ZIP_SHA512" \
    > "$GJS.source"
fi

# Swagger UI for /docs, served from web/vendor/swagger-ui (no CDN). Pinned, and the
# npm tarball is checked against the registry's published integrity before use.
SWAGGER_VERSION=5.35.0
SWAGGER_SHA512=U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ==
SWAGGER_DIR=web/vendor/swagger-ui
if [ "$(cat "$SWAGGER_DIR/VERSION" 2>/dev/null)" != "$SWAGGER_VERSION sha512-$SWAGGER_SHA512" ]; then
  log "fetching swagger-ui-dist $SWAGGER_VERSION from npm"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack -q "swagger-ui-dist@$SWAGGER_VERSION" >/dev/null)
  got=$(openssl dgst -sha512 -binary "$tmp/swagger-ui-dist-$SWAGGER_VERSION.tgz" | base64 -w0)
  if [ "$got" != "$SWAGGER_SHA512" ]; then
    log "swagger-ui-dist $SWAGGER_VERSION: integrity mismatch (got sha512-$got), refusing it"
    rm -rf "$tmp"
    exit 1
  fi
  tar xzf "$tmp/swagger-ui-dist-$SWAGGER_VERSION.tgz" -C "$tmp"
  rm -rf "$SWAGGER_DIR.tmp" && mkdir -p "$SWAGGER_DIR.tmp"
  cp "$tmp/package/swagger-ui-bundle.js" "$tmp/package/swagger-ui.css" "$tmp/package/LICENSE" "$SWAGGER_DIR.tmp/"
  echo "$SWAGGER_VERSION sha512-$SWAGGER_SHA512" > "$SWAGGER_DIR.tmp/VERSION"
  rm -rf "$SWAGGER_DIR" && mv "$SWAGGER_DIR.tmp" "$SWAGGER_DIR"
  rm -rf "$tmp"
fi

# The Compose Specification's JSON schema, to validate docker/compose.yaml in the tests (no Docker
# engine here). From compose-go, the spec's reference implementation, through the Go module proxy:
# go checks the module against the checksum database, and the file against the digest pinned here.
COMPOSE_GO_VERSION=v2.4.7
COMPOSE_SCHEMA_SHA256=e145038bdb404f2cf6d3eca3bf9b62434afcd7f7bea1ee611a1ff41d3b44ce68
COMPOSE_SCHEMA=tests/vendor/compose-spec.json
if [ "$(sha256sum "$COMPOSE_SCHEMA" 2>/dev/null | cut -d' ' -f1)" != "$COMPOSE_SCHEMA_SHA256" ]; then
  log "fetching the Compose Specification schema (compose-go $COMPOSE_GO_VERSION)"
  dir=$(go mod download -json "github.com/compose-spec/compose-go/v2@$COMPOSE_GO_VERSION" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  echo "$COMPOSE_SCHEMA_SHA256  $dir/schema/compose-spec.json" | sha256sum --quiet -c - \
    || { log "compose-spec.json from compose-go $COMPOSE_GO_VERSION has an unexpected digest"; exit 1; }
  mkdir -p tests/vendor && cp "$dir/schema/compose-spec.json" "$COMPOSE_SCHEMA" && chmod 0644 "$COMPOSE_SCHEMA"
fi
log "ready"
