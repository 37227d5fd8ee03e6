#!/usr/bin/env bash
# Packs every package into DIR: the libraries UserOverlay.Router, .Crypto, .Membership, .Control, .Cluster and the
# useroverlay .NET tool, each .nupkg with its .snupkg (symbols), Release, deterministic, ContinuousIntegrationBuild
# (source paths normalised for SourceLink). docs/packaging.md.
#
#   eng/pack.sh DIR                 the release version: VersionPrefix of Directory.Build.props
#   eng/pack.sh DIR ci.42           a pre-release: 0.1.0-ci.42
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:?usage: eng/pack.sh DIR [VERSION_SUFFIX]}")
args=(-c Release -o "$out" -p:ContinuousIntegrationBuild=true -v quiet -nologo)
[ -z "${2:-}" ] || args+=("-p:VersionSuffix=$2")
# The tool first: its build builds every library (with the same properties), which are then packed without rebuilding.
dotnet pack Cli/Cli.csproj "${args[@]}"
for lib in Router Crypto Membership Control Cluster; do
  dotnet pack "$lib/$lib.csproj" --no-build "${args[@]}"
done
ls "$out"
