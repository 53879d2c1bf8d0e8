#!/usr/bin/env bash
# Install (or --uninstall) the one-folder Linux build for one user, or under any --prefix.
#
#   packaging/install-linux.sh                      # dist/imgsim-desktop -> ~/.local
#   packaging/install-linux.sh --prefix /opt/local  # system-wide (run with sudo)
#   packaging/install-linux.sh --uninstall [--prefix DIR]
#   ./install-linux.sh                              # from inside an unpacked bundle: installs that bundle
#
# Layout under PREFIX (freedesktop locations, so menus, docks and file managers find the app):
#   opt/imgsim-desktop/                              the bundle, replaced as a whole on upgrade
#   bin/imgsim-desktop                               symlink to it (for terminals)
#   share/applications/imgsim-desktop.desktop        menu entry, Exec= the absolute path
#   share/icons/hicolor/<N>x<N>/apps/imgsim-desktop.png, .../scalable/apps/imgsim-desktop.svg
# The user's library (catalog, indexes, settings) is not in any of these and is never touched.
set -euo pipefail

APP=imgsim-desktop
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="${HOME}/.local"
src=""
action=install

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="$2"; shift 2 ;;
        --prefix=*) prefix="${1#*=}"; shift ;;
        --from) src="$2"; shift 2 ;;
        --uninstall) action=uninstall; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

opt="$prefix/opt/$APP"
bin="$prefix/bin/$APP"
apps="$prefix/share/applications"
icons="$prefix/share/icons/hicolor"
desktop="$apps/$APP.desktop"

refresh_caches() {
    # Optional tools: without them the desktop notices new files on its next scan.
    if command -v update-desktop-database >/dev/null; then update-desktop-database -q "$apps" || true; fi
    if command -v gtk-update-icon-cache >/dev/null && [ -f "$icons/index.theme" ]; then gtk-update-icon-cache -q -t "$icons" || true; fi
}

if [ "$action" = uninstall ]; then
    rm -rf "$opt"
    [ -L "$bin" ] && rm -f "$bin"
    rm -f "$desktop"
    find "$icons" -path "*/apps/$APP.*" -delete 2>/dev/null || true
    refresh_caches
    echo "removed $APP from $prefix (your photo library data is untouched)"
    exit 0
fi

if [ -z "$src" ]; then
    # Run from an unpacked bundle (build.py copies this script into it), else from the source tree.
    if [ -x "$here/$APP" ]; then src="$here"; else src="$here/../dist/$APP"; fi
fi
[ -x "$src/$APP" ] || { echo "no built app at $src (build it: python packaging/build.py)" >&2; exit 1; }
src="$(cd "$src" && pwd)"
res="$src/_internal/resources"  # PyInstaller 6 keeps data files under _internal/
[ -d "$res" ] || { echo "$src has no _internal/resources: not a build of $APP?" >&2; exit 1; }

# Copy beside the old install, then swap: a failed copy leaves the previous version working.
mkdir -p "$prefix/opt" "$prefix/bin" "$apps"
rm -rf "$opt.new"
cp -a "$src" "$opt.new"
rm -rf "$opt"
mv "$opt.new" "$opt"
ln -sfn "$opt/$APP" "$bin"

for png in "$res"/icons/$APP-*.png; do
    size="$(basename "$png" .png)"; size="${size##*-}"
    install -Dm644 "$png" "$icons/${size}x${size}/apps/$APP.png"
done
install -Dm644 "$res/imgsim.svg" "$icons/scalable/apps/$APP.svg"
# Menus do not always have ~/.local/bin on their PATH: point Exec/TryExec at the install itself.
sed -e "s|^Exec=$APP|Exec=$opt/$APP|" -e "s|^TryExec=.*|TryExec=$opt/$APP|" "$res/$APP.desktop" > "$desktop.tmp"
chmod 644 "$desktop.tmp"
mv "$desktop.tmp" "$desktop"
refresh_caches
echo "installed $APP in $opt; menu entry $desktop; command $bin"
