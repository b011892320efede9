#!/usr/bin/env bash
# The README's two commands, `make demo` and `make test`, as a newcomer runs them: in a fresh clone, in
# a clean environment (`env -i`: no virtualenv, no CI, no variables of this shell), once with npm on
# PATH and once without. Prints a summary: exit code, time and last line of each run.
#
#   tools/fresh_clone_check.sh [REPOSITORY] [REF]     (defaults: this checkout, HEAD)
#
# Each run builds its own .venv and runs the whole suite: expect several minutes per clone. HOME is
# kept so pip's and npm's caches are used; set FRESH_HOME=1 for an empty home as well.
# Not part of `make test`.
set -uo pipefail

repo="${1:-$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)}"
# The commit, resolved here: in a clone, HEAD would name the clone's own default branch.
ref="$(git -C "$repo" rev-parse "${2:-HEAD}")" || exit 1
work="$(mktemp -d "${TMPDIR:-/tmp}/fresh-clone.XXXXXX")"
home="$HOME"
if [ "${FRESH_HOME:-}" = 1 ]; then home="$work/home"; mkdir -p "$home"; fi
full_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# A PATH like the full one, less npm and npx: every other program is linked into one directory.
no_npm="$work/bin-without-npm"
mkdir -p "$no_npm"
IFS=: read -ra dirs <<< "$full_path"
for dir in "${dirs[@]}"; do
  for program in "$dir"/*; do
    name="$(basename "$program")"
    case "$name" in npm|npx) continue ;; esac
    [ -x "$program" ] && [ ! -e "$no_npm/$name" ] && ln -s "$program" "$no_npm/$name"
  done
done

summary=()
run_case() {
  local label="$1" path="$2" clone="$work/$1"
  git clone --quiet "$repo" "$clone" && git -C "$clone" checkout --quiet "$ref" || return 1
  for command in "make demo" "make test"; do
    local log="$work/$label-${command// /-}.log" start end code
    start=$(date +%s)
    (cd "$clone" && env -i HOME="$home" PATH="$path" LANG=C.UTF-8 TERM=dumb $command) > "$log" 2>&1
    code=$?
    end=$(date +%s)
    local last=""
    # pytest's closing line for the tests; the last line said otherwise (the demo's run hint).
    [ "$command" = "make test" ] && last="$(grep -E '[0-9]+ (passed|failed)' "$log" | tail -1)"
    [ -n "$last" ] || last="$(grep -v '^[[:space:]]*$' "$log" | tail -1)"
    local skipped=""
    grep -q "workflow lint (actionlint) was skipped" "$log" && skipped=" [says: workflow lint skipped]"
    summary+=("$(printf '%-12s %-10s exit %-3s %4ss  %s%s' "$label" "$command" "$code" "$((end - start))" "$last" "$skipped")")
    echo "${summary[-1]}   (log: $log)"
  done
}

echo "fresh clones of $repo at ${ref:0:12} in $work"
command -v npm > /dev/null && run_case with-npm "$full_path"
run_case without-npm "$no_npm"
echo
echo "summary:"
printf '  %s\n' "${summary[@]}"
