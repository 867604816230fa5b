#!/usr/bin/env bash
# Create .venv with Python 3.11 and install LiverHealth with all extras (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "LiverHealth needs Python 3.11 (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[all]"
# The web viewer: NiiVue's self-contained browser bundle, from the npm package (served by
# `liverhealth web` from liverhealth/web/static/vendor/niivue, never from a CDN); pinned by version and hash.
NIIVUE_VERSION=0.69.0
NIIVUE_SHA256=47b896b77ec4a5be3ef1949c33ad393b6f45629921f326c279000bcf51bdb4af
vendor=liverhealth/web/static/vendor/niivue
if ! echo "$NIIVUE_SHA256  $vendor/niivue.umd.js" | sha256sum --check --status 2>/dev/null; then
    if ! command -v npm >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null) \
            || echo "setup: could not install npm for the web viewer" >&2
    fi
    if command -v npm >/dev/null; then
        tmp=$(mktemp -d)
        (cd "$tmp" && npm pack --silent "@niivue/niivue@$NIIVUE_VERSION" >/dev/null && tar -xzf niivue-niivue-*.tgz)
        echo "$NIIVUE_SHA256  $tmp/package/dist/niivue.umd.js" | sha256sum --check --status \
            || { echo "setup: the NiiVue $NIIVUE_VERSION bundle from npm does not match its pinned sha256" >&2; exit 1; }
        mkdir -p "$vendor"
        cp "$tmp/package/dist/niivue.umd.js" "$tmp/package/package.json" "$vendor/"
        rm -rf "$tmp"
    else
        echo "setup: the web viewer needs NiiVue from npm: sudo apt-get install npm, then run setup again" >&2
    fi
fi
# The window's Qt display plugin (xcb) needs these libraries; offscreen use (tests, screenshots) does not.
XCB_PACKAGES="libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-shape0"
missing=$(.venv/bin/python -c "from liverhealth.cli import missing_xcb_packages as m; print(' '.join(m()))")
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $XCB_PACKAGES >/dev/null) \
            || echo "setup: could not install the window's display libraries ($missing)" >&2
    else
        echo "setup: the window needs Qt's display libraries: sudo apt-get install $missing" >&2
    fi
fi
# The PDF report sets Chinese text (an LLM draft) in an embedded CJK TrueType face from the system's fonts.
if ! .venv/bin/python -c "from liverhealth.reporting.fonts import has_cjk_face as f; raise SystemExit(not f())"; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-droid-fallback >/dev/null) \
            || echo "setup: could not install the PDF report's CJK font (fonts-droid-fallback)" >&2
    else
        echo "setup: Chinese text in PDF reports needs a CJK font: sudo apt-get install fonts-droid-fallback" >&2
    fi
fi
echo "LiverHealth is installed in .venv ($(.venv/bin/liverhealth --version))"
