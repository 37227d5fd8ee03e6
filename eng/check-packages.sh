#!/usr/bin/env bash
# CI's package check (.ci/run): packs everything into a local folder feed, then, from that feed only (the NuGet mirror
# stays a source for the dependencies), builds samples/embed against the packages instead of the projects and runs
# both its parts, and installs the useroverlay tool and runs it. A package that is broken (a missing assembly,
# dependency or type, a wrong version) fails here. docs/packaging.md.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/useroverlay-packages.XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix=$(sed -n 's:.*<VersionPrefix>\(.*\)</VersionPrefix>.*:\1:p' Directory.Build.props)
suffix="ci.$(git rev-list --count HEAD 2>/dev/null || echo 0)"
version="$prefix-$suffix"

eng/pack.sh "$work/feed" "$suffix" >/dev/null
for id in UserOverlay.Router UserOverlay.Crypto UserOverlay.Membership UserOverlay.Control UserOverlay.Cluster useroverlay; do
  # (a README that is missing from a package fails the pack itself: NU5039)
  for ext in nupkg snupkg; do
    [ -f "$work/feed/$id.$version.$ext" ] || { echo "check-packages: $id.$version.$ext was not packed" >&2; exit 1; }
  done
done

# The sample against the packages: its own packages folder (so a package of this version restored before cannot stand
# in), the machine's global folder as a read-only fallback for the dependencies, its own artifacts folder.
global=$(dotnet nuget locals global-packages --list | sed 's/^global-packages: //')
dotnet build samples/embed/Embed.csproj -c Release -v quiet -nologo --artifacts-path "$work/embed" \
  -p:UserOverlayPackageVersion="$version" -p:RestoreAdditionalProjectSources="$work/feed" \
  -p:RestorePackagesPath="$work/packages" -p:RestoreFallbackFolders="$global"
assets="$work/embed/obj/Embed/project.assets.json"
for id in UserOverlay.Router UserOverlay.Crypto UserOverlay.Membership UserOverlay.Control UserOverlay.Cluster; do
  grep -q "\"$id/$version\": {" "$assets" || { echo "check-packages: samples/embed did not use the package $id $version" >&2; exit 1; }
done
grep -q '"path": "../../Router/Router.csproj"' "$assets" && { echo "check-packages: samples/embed used a project reference" >&2; exit 1; }
sample="$work/embed/bin/Embed/release/useroverlay-embed-sample.dll"
dotnet "$sample" | tee "$work/embed.out"
grep -q 'c2 received 60 bytes: "hello from c1"' "$work/embed.out"
dotnet "$sample" libraries | tee "$work/libraries.out"
grep -q 'crypto: .* opened: Ok' "$work/libraries.out"

# The tool, installed from the feed as a user would (root here, as CI runs).
dotnet tool install --tool-path "$work/tool" --add-source "$work/feed" --version "$version" useroverlay >/dev/null
line=$("$work/tool/useroverlay" --version)
echo "$line"
[[ "$line" == "useroverlay $version (.NET "* ]] || { echo "check-packages: the tool printed '$line', expected version $version" >&2; exit 1; }
echo "check-packages: 6 packages of $version pass"
