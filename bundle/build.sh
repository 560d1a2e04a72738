#!/usr/bin/env bash
# Builds SanaVideo.ofx.bundle and installs it into a folder OFX hosts search.
#
#   bundle/build.sh [--debug] [--lib PATH] [DEST]
#
#   DEST     folder to put SanaVideo.ofx.bundle in (default: /usr/OFX/Plugins, which every host
#            searches; any folder listed in OFX_PLUGIN_PATH works too)
#   --lib    use this libsana.so instead of building one (the test harness passes its own)
#   --debug  build the debug profile instead of release
#
# Layout (spec/OFX.md "Bundle"): Contents/Info.plist (CFBundleExecutable = SanaVideo.ofx; at least
# one host refuses a bundle without it), Contents/Linux-x86-64/SanaVideo.ofx (the renamed cdylib),
# Contents/Resources/<plugin id>.png (effect icons) and SANA.png (Natron's toolbar-group icon).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
profile=release
lib=""
dest=""
while [ $# -gt 0 ]; do
    case "$1" in
        --debug) profile=debug ;;
        --lib) lib="$2"; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        -*) echo "bundle/build.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) dest="$1" ;;
    esac
    shift
done
dest="${dest:-/usr/OFX/Plugins}"

if [ -z "$lib" ]; then
    flag=""
    [ "$profile" = release ] && flag="--release"
    (cd "$here" && cargo build --lib $flag)
    lib="${CARGO_TARGET_DIR:-$here/target}/$profile/libsana.so"
fi
if [ ! -f "$lib" ]; then
    echo "bundle/build.sh: no library at $lib: build it (cargo build --lib --release) or pass --lib PATH" >&2
    exit 1
fi

version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/Cargo.toml" | head -n1)"
bundle="$dest/SanaVideo.ofx.bundle"
mkdir -p "$dest"
# a stale binary or icon from an older install must not survive
rm -rf "$bundle"
mkdir -p "$bundle/Contents/Linux-x86-64" "$bundle/Contents/Resources"
sed "s/@VERSION@/$version/g" "$here/ofx/Info.plist.in" > "$bundle/Contents/Info.plist"
cp "$lib" "$bundle/Contents/Linux-x86-64/SanaVideo.ofx"
cp "$here"/ofx/icons/*.png "$bundle/Contents/Resources/"
echo "$bundle"
