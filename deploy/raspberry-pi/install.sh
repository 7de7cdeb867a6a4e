#!/bin/bash
# Install the detak kiosk on a Raspberry Pi 4/5 running Raspberry Pi OS Bookworm (64-bit,
# desktop). Run as root from this folder of a detak checkout:
#
#   sudo ./install.sh --bundle edge-2026.tar.gz --public-key bundle.pub [--desktop-user pi]
#
# What it does (see docs/kiosk.md, "Installing on a Raspberry Pi"):
#  1. apt: python3-venv, curl, chromium-browser (skip with --no-apt);
#  2. a system user `detak` (no login, home /var/lib/detak) in groups dialout and bluetooth;
#  3. the kiosk venv /opt/detak/venv: `pip install detak` (no extras: NO torch) and checks that
#     `import torch` fails in it;
#  4. the model bundle: `detak bundle install BUNDLE --public-key KEY` as user detak into
#     /var/lib/detak/bundles (verified with the key; the previous bundle stays active on failure);
#  5. the systemd unit detak-kiosk.service, /etc/detak/kiosk.env, the udev rule for USB-serial
#     ECGs (/dev/detak-ecg), and Chromium in kiosk mode in the desktop session (labwc autostart
#     and wayfire.ini) of --desktop-user (default: the user who ran sudo);
#  6. enables and starts the service (skip with --no-start).
#
# Options:
#   --source SPEC        what pip installs (default: detak; e.g. ./detak-0.1.0-py3-none-any.whl
#                        or a checkout folder)
#   --bundle FILE        signed model bundle to install (none: keep the installed one, or the
#                        model shipped in the package)
#   --public-key FILE    Ed25519 public key (PEM) bundles must verify against; copied to
#                        /etc/detak/bundle.pub
#   --desktop-user USER  the auto-login desktop user who runs Chromium (default: $SUDO_USER)
#   --no-apt, --no-start
# DESTDIR=DIR installs every file under DIR instead of / and skips the steps that change the
# running system (apt, useradd, chown, systemctl, udevadm): a staging run for checking the
# script and the venv without a Pi.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DESTDIR=${DESTDIR:-}
SOURCE=detak
BUNDLE=
PUBKEY=
DESKTOP_USER=${SUDO_USER:-}
APT=1
START=1
KIOSK_USER=detak
VENV=/opt/detak/venv
STATE=/var/lib/detak
PIP_PYTHON=${PYTHON:-python3}

die() { echo "install.sh: error: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --source) SOURCE=${2:?--source needs a value}; shift 2 ;;
    --bundle) BUNDLE=${2:?--bundle needs a file}; shift 2 ;;
    --public-key) PUBKEY=${2:?--public-key needs a file}; shift 2 ;;
    --desktop-user) DESKTOP_USER=${2:?--desktop-user needs a user}; shift 2 ;;
    --no-apt) APT=0; shift ;;
    --no-start) START=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

[ -n "$DESTDIR" ] || [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0 ...)"
[ -z "$BUNDLE" ] || [ -f "$BUNDLE" ] || die "bundle '$BUNDLE' not found"
[ -z "$BUNDLE" ] || [ -n "$PUBKEY" ] || die "--bundle needs --public-key"
[ -z "$PUBKEY" ] || [ -f "$PUBKEY" ] || die "public key '$PUBKEY' not found"
case "$(uname -m)" in aarch64|arm64) ;; *) say "note: $(uname -m), not aarch64: not a Raspberry Pi?" ;; esac
# A local wheel or folder (a path, not a bare project name) made absolute.
case "$SOURCE" in
  */*|*.whl|*.tar.gz|.|..)
    [ -e "$SOURCE" ] || die "--source $SOURCE: no such file or folder"
    SOURCE=$(cd "$(dirname "$SOURCE")" && pwd)/$(basename "$SOURCE") ;;
esac

live() { [ -z "$DESTDIR" ]; }   # changing the running system, not a staging folder

# Run a command as the kiosk user (as the caller when staging).
as_kiosk() {
  if live; then runuser -u "$KIOSK_USER" -- "$@"; else "$@"; fi
}

# ini_set FILE SECTION KEY VALUE: set KEY in [SECTION] of a wayfire-style ini file, adding the
# section at the end when it is missing; other lines stay as they are.
ini_set() {
  local file=$1 section=$2 key=$3 value=$4 tmp
  tmp=$(mktemp)
  awk -v s="[$section]" -v k="$key" -v v="$value" '
    function put() { print k " = " v; done = 1 }
    /^\[/ { if (insec && !done) put(); insec = ($0 == s); print; next }
    insec && $0 ~ "^[ \t]*" k "[ \t]*=" { if (!done) put(); next }
    { print }
    END { if (!done) { if (!insec) print "\n" s; put() } }
  ' "$file" > "$tmp"
  cat "$tmp" > "$file"
  rm -f "$tmp"
}

# 1. system packages
if live && [ "$APT" -eq 1 ]; then
  say "apt: python3-venv curl chromium-browser"
  apt-get update -qq
  apt-get install -y -qq python3-venv curl chromium-browser >/dev/null
fi

# 2. the kiosk user
if live; then
  if ! id "$KIOSK_USER" >/dev/null 2>&1; then
    say "creating system user $KIOSK_USER"
    useradd --system --user-group --home-dir "$STATE" --no-create-home \
      --shell /usr/sbin/nologin "$KIOSK_USER"
  fi
  for g in dialout bluetooth; do
    if getent group "$g" >/dev/null; then usermod -aG "$g" "$KIOSK_USER"; else say "no group $g"; fi
  done
fi
install -d -m 0755 "$DESTDIR/opt/detak" "$DESTDIR/etc/detak"
install -d -m 0700 "$DESTDIR$STATE" "$DESTDIR$STATE/bundles" "$DESTDIR$STATE/cache"
if live; then chown -R "$KIOSK_USER:$KIOSK_USER" "$STATE"; fi

# 3. the kiosk venv: no extras, so no torch
say "building $DESTDIR$VENV (pip install $SOURCE)"
"$PIP_PYTHON" -m venv "$DESTDIR$VENV"
"$DESTDIR$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$DESTDIR$VENV/bin/python" -m pip install -q --disable-pip-version-check --prefer-binary "$SOURCE"
if "$DESTDIR$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
  die "torch is importable in $DESTDIR$VENV: the kiosk must not carry it (install detak without extras)"
fi
say "checked: import torch fails in the kiosk venv (as it must)"
"$DESTDIR$VENV/bin/python" -c "import detak, onnxruntime; print('install.sh: detak', detak.__version__, '/ onnxruntime', onnxruntime.__version__)"
install -d "$DESTDIR/usr/local/bin"
ln -sfn "$VENV/bin/detak" "$DESTDIR/usr/local/bin/detak"
if [ -f "$HERE/../../docs/kiosk.md" ]; then
  install -d "$DESTDIR/opt/detak/docs"
  install -m 0644 "$HERE/../../docs/kiosk.md" "$DESTDIR/opt/detak/docs/kiosk.md"
fi

# 4. the model bundle
if [ -n "$PUBKEY" ]; then
  install -m 0644 "$PUBKEY" "$DESTDIR/etc/detak/bundle.pub"
fi
if [ -n "$BUNDLE" ]; then
  incoming=$(mktemp -d "$DESTDIR$STATE/incoming.XXXXXX")
  cp "$BUNDLE" "$incoming/"
  if live; then chown -R "$KIOSK_USER:$KIOSK_USER" "$incoming"; fi
  say "installing bundle $(basename "$BUNDLE")"
  as_kiosk env DETAK_BUNDLES="$DESTDIR$STATE/bundles" DETAK_CACHE="$DESTDIR$STATE/cache" \
    HOME="$DESTDIR$STATE" "$DESTDIR$VENV/bin/detak" bundle install \
    "$incoming/$(basename "$BUNDLE")" --public-key "$DESTDIR/etc/detak/bundle.pub"
  rm -rf "$incoming"
fi

# 5. service, settings, udev, browser
install -d "$DESTDIR/etc/systemd/system" "$DESTDIR/etc/udev/rules.d" "$DESTDIR/usr/local/bin"
install -m 0644 "$HERE/detak-kiosk.service" "$DESTDIR/etc/systemd/system/detak-kiosk.service"
if [ ! -f "$DESTDIR/etc/detak/kiosk.env" ]; then
  install -m 0644 "$HERE/kiosk.env" "$DESTDIR/etc/detak/kiosk.env"
else
  say "kept the existing /etc/detak/kiosk.env"
fi
install -m 0644 "$HERE/99-detak-ecg.rules" "$DESTDIR/etc/udev/rules.d/99-detak-ecg.rules"
install -m 0755 "$HERE/detak-chromium-kiosk" "$DESTDIR/usr/local/bin/detak-chromium-kiosk"

if [ -n "$DESKTOP_USER" ] && getent passwd "$DESKTOP_USER" >/dev/null; then
  home=$DESTDIR$(getent passwd "$DESKTOP_USER" | cut -d: -f6)
  group=$(id -gn "$DESKTOP_USER")
  install -d "$home/.config/labwc"
  if [ -f "$home/.config/labwc/autostart" ] && ! grep -q detak-chromium-kiosk "$home/.config/labwc/autostart"; then
    cp "$home/.config/labwc/autostart" "$home/.config/labwc/autostart.before-detak"
  fi
  install -m 0644 "$HERE/labwc-autostart" "$home/.config/labwc/autostart"
  touch "$home/.config/wayfire.ini"
  section=
  while IFS= read -r line; do
    case "$line" in
      '#'*|'') ;;
      '['*']') section=${line#[}; section=${section%]} ;;
      *=*) key=${line%%=*}; ini_set "$home/.config/wayfire.ini" "$section" "${key%% }" "${line#*= }" ;;
    esac
  done < "$HERE/wayfire.ini"
  if live; then chown -R "$DESKTOP_USER:$group" "$home/.config/labwc" "$home/.config/wayfire.ini"; fi
  say "Chromium kiosk autostart set for desktop user $DESKTOP_USER (labwc and wayfire)"
else
  say "no desktop user (--desktop-user USER): Chromium autostart not set up"
fi

# 6. start
if live; then
  udevadm control --reload-rules && udevadm trigger --subsystem-match=tty
  systemctl daemon-reload
  if [ "$START" -eq 1 ]; then
    systemctl enable --now detak-kiosk.service
    say "started; check: curl -s http://127.0.0.1:8080/healthz ; journalctl -u detak-kiosk"
  else
    systemctl enable detak-kiosk.service
  fi
fi
say "done"
