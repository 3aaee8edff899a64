#!/usr/bin/env bash
# Installs a built souk binary as a systemd service on this machine.
#
#   sudo packaging/install.sh [--binary PATH] [--no-start]
#
#   --binary PATH   the souk to install (default: target/release/souk of this checkout, or
#                   $CARGO_TARGET_DIR/release/souk)
#   --no-start      install and enable, but do not start or restart the service
#
# What it does, each step safe to repeat (run it again to upgrade):
#   - creates the `souk` system user and group (home /var/lib/souk, no login shell);
#   - installs /usr/bin/souk (atomically: a running souk keeps its old file until restarted);
#   - installs /etc/souk/souk.toml from packaging/souk.toml, never overwriting an existing one,
#     and checks the config with `souk config print` before anything is started;
#   - installs /etc/systemd/system/souk.service and the docs under /usr/share/doc/souk;
#   - systemctl daemon-reload, then enable --now (or restart, when an upgrade changed the binary
#     or the unit of a running service).
# The data dir /var/lib/souk is created by systemd (StateDirectory=) at the first start.
# On a machine where systemd is not running (a container, an image being built) it installs the
# files and says what it skipped.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

bin_dest=/usr/bin/souk
conf_dir=/etc/souk
conf_dest=$conf_dir/souk.toml
unit_dest=/etc/systemd/system/souk.service
doc_dir=/usr/share/doc/souk

say() { printf 'install.sh: %s\n' "$*"; }
die() {
  printf 'install.sh: error: %s\n' "$*" >&2
  exit 1
}
usage() { sed -n '2,9s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

binary="${CARGO_TARGET_DIR:-$repo/target}/release/souk"
start=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --binary)
      [ $# -ge 2 ] || die "--binary needs a path"
      binary="$2"
      shift 2
      ;;
    --binary=*)
      binary="${1#--binary=}"
      shift
      ;;
    --no-start)
      start=no
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      usage >&2
      die "unknown argument: $1"
      ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "this installs system files and a service: run it as root (sudo $0)"
[ -f "$binary" ] || die "no souk binary at $binary; build one (cargo build --release) or pass --binary PATH"
[ -x "$binary" ] || die "$binary is not executable"
# Catches a binary for another architecture or a broken build before anything is replaced.
version="$("$binary" version 2>&1)" || die "$binary does not run here: $version"
say "installing $(head -n1 <<<"$version") from $binary"

for f in "$here/souk.toml" "$here/systemd/souk.service"; do
  [ -f "$f" ] || die "missing $f; run this script from a complete Souk checkout"
done

# systemd is "running" when its runtime directory exists; systemctl alone may be installed in a
# container where nothing would ever start the unit.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  have_systemd=yes
else
  have_systemd=no
fi

# --- the souk user -------------------------------------------------------------------------------
nologin="$(command -v nologin || echo /usr/sbin/nologin)"
if getent group souk >/dev/null; then
  say "group souk exists"
else
  groupadd --system souk
  say "created group souk"
fi
if getent passwd souk >/dev/null; then
  say "user souk exists"
else
  # No home is created: /var/lib/souk is made by systemd with the right owner and mode.
  useradd --system --gid souk --home-dir /var/lib/souk --no-create-home --shell "$nologin" \
    --comment "Souk marketplace backend" souk
  say "created system user souk"
fi

# --- files ---------------------------------------------------------------------------------------
# Installs $1 as $2 with mode $3 (owner root, group $4) through a temporary file and a rename, so
# nothing ever sees a half-written file. Prints "changed" when the content differed.
put() {
  local src="$1" dest="$2" mode="$3" group="$4" tmp
  if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
    chmod "$mode" "$dest"
    chown "root:$group" "$dest"
    return 0
  fi
  tmp="$(dirname "$dest")/.$(basename "$dest").install.$$"
  install -m "$mode" -o root -g "$group" "$src" "$tmp"
  mv -f "$tmp" "$dest"
  echo changed
}

bin_changed="$(put "$binary" "$bin_dest" 0755 root)"
if [ -n "$bin_changed" ]; then say "installed $bin_dest"; else say "$bin_dest is already this version"; fi

# The config may hold nats_password: readable by root and the souk group only.
install -d -m 0750 -o root -g souk "$conf_dir"
if [ -e "$conf_dest" ]; then
  say "kept the existing $conf_dest (the example is packaging/souk.toml)"
else
  put "$here/souk.toml" "$conf_dest" 0640 souk >/dev/null
  say "installed $conf_dest"
fi
# Checked as it will be read, without the SOUK_* variables of this shell, so a bad config is
# reported here rather than by a failing service.
if ! check="$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$bin_dest" --config "$conf_dest" config print 2>&1)"; then
  die "$conf_dest is not valid: $check"
fi
http="$(sed -n 's/^http = "\(.*\)".*/\1/p' <<<"$check")"
data_dir="$(sed -n 's/^data_dir = "\(.*\)".*/\1/p' <<<"$check")"
if [ "$data_dir" != /var/lib/souk ]; then
  say "warning: data_dir is $data_dir in $conf_dest; souk.service only lets Souk write /var/lib/souk"
fi

unit_changed="$(put "$here/systemd/souk.service" "$unit_dest" 0644 root)"
if [ -n "$unit_changed" ]; then say "installed $unit_dest"; else say "$unit_dest is unchanged"; fi

install -d -m 0755 "$doc_dir"
put "$here/README.md" "$doc_dir/README.server.md" 0644 root >/dev/null
put "$repo/assets/souk.example.toml" "$doc_dir/souk.example.toml" 0644 root >/dev/null
# The binary embeds nats-server (Apache-2.0); ship its licence when the build left it here.
for license in "$repo"/vendor/nats-server/dist/*/LICENSE; do
  if [ -f "$license" ]; then
    put "$license" "$doc_dir/LICENSE.nats-server" 0644 root >/dev/null
    break
  fi
done
say "installed the docs in $doc_dir"

# --- the service ---------------------------------------------------------------------------------
if [ "$have_systemd" = no ]; then
  say "systemd is not running here: skipped daemon-reload, enable and start."
  say "on the target machine: systemctl daemon-reload && systemctl enable --now souk"
  exit 0
fi

systemctl daemon-reload
if [ "$start" = no ]; then
  systemctl enable --quiet souk
  say "enabled souk.service (not started: --no-start). Start it with: systemctl start souk"
  exit 0
fi

# With Type=notify, start and restart return once Souk reports READY=1, or fail.
failed() {
  die "souk.service did not start. See: systemctl status souk; journalctl -u souk -e"
}
if systemctl is-active --quiet souk; then
  if [ -n "$bin_changed$unit_changed" ]; then
    say "restarting souk.service to run the new version"
    systemctl restart souk || failed
  else
    say "souk.service is running and nothing changed"
  fi
  systemctl enable --quiet souk
else
  say "starting souk.service"
  systemctl enable --now --quiet souk || failed
fi

cat <<EOF

Souk is running as souk.service, listening on http://$http (config: $conf_dest).
Its data lives in /var/lib/souk.

On its first start, Souk prints a one-time link to create the first admin account. Find it in
the service's log:

    journalctl -u souk --no-pager | grep -i setup

Follow the log with: journalctl -u souk -f
EOF
