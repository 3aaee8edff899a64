#!/usr/bin/env bash
# Checks that assets/souk.example.toml documents exactly the keys of src/config.rs `KEYS`, each
# with its current default and help text, so the template cannot drift from the code.
#
#   packaging/check-config-template.sh        (from anywhere; exit 0 when in step)
#
# It reads the Rust source as text rather than asking a built `souk`, so it runs without a build
# (CI, a fresh clone). For every entry of `KEYS`, written either as `key("name", "default",
# "help")` or as `Key { name: "…", default: "…", secret: …, help: "…" }`, the template must hold
# the line `# name = "default"` and a comment line with the help text; and the template must
# name no key that `KEYS` lacks.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
config="$root/src/config.rs"
template="$root/assets/souk.example.toml"

# The `KEYS` table on one line, so that entries rustfmt wrapped over several lines parse alike.
table="$(sed -n '/^pub const KEYS: &\[Key\] = &\[/,/^\];/p' "$config" | tr '\n' ' ' | tr -s ' ')"
if [ -z "$table" ]; then
  echo "check-config-template: cannot find 'pub const KEYS' in $config; update this script" >&2
  exit 2
fi

# One line per key: name, default and help, separated by the ASCII unit separator (0x1f), since
# a tab is whitespace to `read` and would swallow an empty default.
sep=$'\x1f'
entries="$(
  {
    grep -oE 'key\( ?"[^"]*", ?"[^"]*", ?"[^"]*"' <<<"$table" |
      sed -E 's/^key\( ?"([^"]*)", ?"([^"]*)", ?"([^"]*)"$/\1\x1f\2\x1f\3/'
    grep -oE 'Key \{ ?name: "[^"]*", ?default: "[^"]*", ?secret: [a-z]+, ?help: "[^"]*"' <<<"$table" |
      sed -E 's/^Key \{ ?name: "([^"]*)", ?default: "([^"]*)", ?secret: [a-z]+, ?help: "([^"]*)"$/\1\x1f\2\x1f\3/'
  } || true
)"

# Every entry must have been understood: a shape this script does not know would otherwise be
# skipped silently and the check would pass on a table it never read.
declared="$(grep -oE 'key\(|Key \{' <<<"$table" | wc -l)"
parsed="$(grep -c . <<<"$entries" || true)"
if [ "$declared" -ne "$parsed" ]; then
  echo "check-config-template: $config declares $declared keys but only $parsed were understood;" \
    "write each as key(\"name\", \"default\", \"help\") or Key { name, default, secret, help }," \
    "or update this script" >&2
  exit 2
fi

problems=0
while IFS="$sep" read -r name default help; do
  if ! grep -qxF "# $name = \"$default\"" "$template"; then
    echo "missing or stale: '# $name = \"$default\"' is not a line of assets/souk.example.toml" >&2
    problems=$((problems + 1))
  fi
  if ! grep -qxF "# $help" "$template"; then
    echo "missing or stale help for $name: '# $help' is not a line of assets/souk.example.toml" >&2
    problems=$((problems + 1))
  fi
done <<<"$entries"

# Keys in the template that the code no longer knows: commented `# key = …` lines.
known="$(cut -d "$sep" -f1 <<<"$entries")"
while read -r name; do
  if ! grep -qxF "$name" <<<"$known"; then
    echo "unknown key in assets/souk.example.toml: $name (not in src/config.rs KEYS)" >&2
    problems=$((problems + 1))
  fi
done < <(sed -nE 's/^# ?([a-z][a-z0-9_]*) = .*/\1/p' "$template")

if [ "$problems" -ne 0 ]; then
  echo "check-config-template: $problems problem(s); edit assets/souk.example.toml to match src/config.rs" >&2
  exit 1
fi
echo "check-config-template: all $parsed keys of src/config.rs are documented in assets/souk.example.toml"
