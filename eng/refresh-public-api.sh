#!/usr/bin/env bash
# Records each library's current public API in its PublicAPI.Unshipped.txt (docs/packaging.md, "Public API").
#
#   eng/refresh-public-api.sh            after a change to a public surface (a build fails with RS0016/RS0017 until then)
#   eng/refresh-public-api.sh Router     only the named libraries (a new library: name it once, which creates its files)
#
# Unshipped is rewritten from scratch: everything public that PublicAPI.Shipped.txt does not list, by the
# PublicApiAnalyzers' own code fix for RS0016 (dotnet format analyzers). Shipped lines are never touched: removing or
# changing a released API stays an error (RS0017) until it is recorded by hand as a "*REMOVED*" line in Unshipped.
# Review the diff of the PublicAPI.*.txt files: it is the change an embedder sees.
set -euo pipefail
cd "$(dirname "$0")/.."
libraries=("$@")
if [ ${#libraries[@]} -eq 0 ]; then
  for f in */PublicAPI.Shipped.txt; do libraries+=("${f%%/*}"); done
fi
for lib in "${libraries[@]}"; do
  project="$lib/$lib.csproj"
  [ -f "$project" ] || { echo "refresh-public-api: no project $project" >&2; exit 2; }
  # Keep the "*REMOVED*" lines someone recorded by hand; everything else is regenerated.
  { echo '#nullable enable'; grep '^\*REMOVED\*' "$lib/PublicAPI.Unshipped.txt" 2>/dev/null || true; } > "$lib/PublicAPI.Unshipped.txt.new"
  mv "$lib/PublicAPI.Unshipped.txt.new" "$lib/PublicAPI.Unshipped.txt"
  [ -f "$lib/PublicAPI.Shipped.txt" ] || echo '#nullable enable' > "$lib/PublicAPI.Shipped.txt"
  echo "refresh-public-api: $lib"
  dotnet format analyzers "$project" --diagnostics RS0016 --severity warn -v quiet
  # The code fix appends in its own order; sort the entries (after the #nullable line) so diffs stay small.
  { head -n 1 "$lib/PublicAPI.Unshipped.txt"; tail -n +2 "$lib/PublicAPI.Unshipped.txt" | LC_ALL=C sort -u; } > "$lib/PublicAPI.Unshipped.txt.new"
  mv "$lib/PublicAPI.Unshipped.txt.new" "$lib/PublicAPI.Unshipped.txt"
done
git --no-pager diff --stat -- '*/PublicAPI.*.txt' || true
