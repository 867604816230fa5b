#!/usr/bin/env bash
# The README's test command.
#   bash scripts/test.sh            the full gate, what CI runs: nothing may be skipped
#   bash scripts/test.sh --quick    the edit-test loop (about 2 minutes): no slow, mysql, gui,
#                                   training_env, browser or pacs tests; a missing prerequisite is a
#                                   skip with its reason
#   bash scripts/test.sh --unit     under 30 s: only tests that need nothing outside the process: none
#                                   marked slow, data (the real CT), mysql, gui, browser, pacs,
#                                   training_env, subprocess or sleeps
# tests/conftest.py sets data, mysql, gui, pacs, subprocess and sleeps from what each test uses (its
# fixtures, the helpers its code calls); slow, training_env and browser are set on the tests.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh --quick tests/imaging`).
# The full gate installs what the tests need when run as root (poppler, MariaDB, the Paddle
# training venv) and starts MariaDB on 127.0.0.1:3306 if none answers; otherwise it says what
# to install. pytest's exit code 5 (no tests collected) is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
tier=full
case "${1:-}" in
    --quick) tier=quick; shift ;;
    --unit) tier=unit; shift ;;
esac

[ -x .venv/bin/python ] || bash scripts/setup.sh

as_root() { [ "$(id -u)" = 0 ]; }
apt_once() {
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
    apt-get install -y -qq "$@" >/dev/null
}
need() {  # need COMMAND-OR-PATH "debian packages" "what it is for"
    if command -v "$1" >/dev/null 2>&1 || [ -x "$1" ]; then return 0; fi
    if as_root; then apt_once $2; return 0; fi
    echo "scripts/test.sh: $3 needs $1: run  sudo apt-get install $2  (or use --quick)" >&2
    exit 1
}
mysql_answers() {
    .venv/bin/python -c "import socket; socket.create_connection(('127.0.0.1', 3306), 2).close()" 2>/dev/null
}

if [ "$tier" != full ]; then
    markers="not slow and not mysql and not gui and not training_env and not browser and not pacs"
    if [ "$tier" = unit ]; then markers="$markers and not data and not subprocess and not sleeps"; fi
    set +e
    .venv/bin/python -m pytest -m "$markers" "$@"
    status=$?
    set -e
else
    export LIVERHEALTH_FULL_GATE=1
    need pdftoppm "poppler-utils poppler-data" "the PDF rendering test"
    [ -d /usr/share/poppler/cMap ] || { as_root && apt_once poppler-data; } || {
        echo "scripts/test.sh: the PDF test needs poppler-data: run  sudo apt-get install poppler-data" >&2; exit 1; }
    need /usr/sbin/mariadbd "mariadb-server" "the database tests"
    need /usr/bin/chromium "chromium" "the web page test"
    need /usr/bin/chromedriver "chromium-driver" "the web page test"
    need /usr/sbin/Orthanc "orthanc orthanc-dicomweb" "the PACS tests"
    [ -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || { as_root && apt_once orthanc-dicomweb; } || {
        echo "scripts/test.sh: the PACS tests need orthanc-dicomweb: run  sudo apt-get install orthanc-dicomweb" >&2; exit 1; }
    need dciodvfy "dicom3tools" "the DICOM SEG/SR validation test"
    if ! mysql_answers; then
        if ! as_root; then
            echo "scripts/test.sh: the database tests need MariaDB on 127.0.0.1:3306 (root, no password);" \
                 "start it (sudo service mariadb start) or use --quick" >&2
            exit 1
        fi
        mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
        start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
        for _ in $(seq 60); do mysql_answers && break; sleep 0.5; done
        mysql_answers || { echo "scripts/test.sh: MariaDB did not start" >&2; exit 1; }
        # Debian's root uses unix_socket auth; the tests connect over TCP as root without a password.
        mariadb -uroot -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
                           GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;" || true
    fi
    bash training/setup.sh   # the separate Paddle training stack, for the training round-trip test
    .venv/bin/ruff check liverhealth training tests bench scripts
    .venv/bin/ruff format --check liverhealth training tests bench scripts
    set +e
    .venv/bin/python -m pytest --durations=30 "$@"  # the slowest 30: what to trim when the gate grows
    status=$?
    set -e
fi
if [ "$status" -eq 5 ]; then
    echo "scripts/test.sh: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
