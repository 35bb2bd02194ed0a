#!/usr/bin/env bash
# Run README.md's Quick start exactly as written, in a fresh copy of the repository, once per Python version
# (`python3` is that version there), and print the size of the venv it made. The versions run side by side
# (the installs mostly wait on downloads). Usage: scripts/quickstart.sh 3.10 3.11 3.12
set -euo pipefail
cd "$(dirname "$0")/.."
# The first ```bash block of the Quick start section is the command a new user copies.
block=$(awk '/^## Quick start/{s=1} s&&/^```bash$/{b=1; next} b&&/^```$/{exit} b' README.md)
[ -n "$block" ] || { echo "quickstart: no bash block in README.md's Quick start" >&2; exit 1; }
logs=$(mktemp -d)
quickstart() {
  local version=$1 python work
  python=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/python"$version" 2>/dev/null | sort -V | tail -1)
  python=${python:-$(command -v "python$version")}
  work=$(mktemp -d)
  git ls-files -z | xargs -0 cp --parents -t "$work"  # tracked files only: what a clone has
  mkdir "$work/.shim" && ln -s "$python" "$work/.shim/python3"
  echo "== Quick start on $("$python" --version): $block"
  (cd "$work" && PATH="$work/.shim:$PATH" bash -euo pipefail -c "$block")
  [ -x "$work/.venv/bin/ldfa" ] && [ -x "$work/.venv/bin/ldfa_node" ] || { echo "console scripts not in bin/"; return 1; }
  ls "$work"/ldfa_demo/before_after_*.png "$work"/ldfa_demo/anonymized_bag/metadata.yaml >/dev/null
  echo "== Quick start on Python $version passed; venv size $(du -sm "$work/.venv" | cut -f1) MB"
  rm -rf "$work"
}
pids=()
for version in "$@"; do
  quickstart "$version" > "$logs/$version.log" 2>&1 &
  pids+=("$!")
done
failed=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { failed=1; echo "== Quick start FAILED on Python ${*:$((i + 1)):1}:"; tail -30 "$logs/${*:$((i + 1)):1}.log"; }
done
grep -h "^== Quick start on Python" "$logs"/*.log || true
rm -rf "$logs"
exit "$failed"
