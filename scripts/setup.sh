#!/usr/bin/env bash
# Installs everything the project needs on this machine, from nothing or on top of what is there:
# Debian packages (nats-server, PostgreSQL), the Python venv (.venv, pinned by constraints.txt)
# and the Node tools (Anvil, solc; pinned by package-lock.json). Each step is skipped when it is
# already done, so running this again is fast.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

ANVIL=node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
CAST=node_modules/@foundry-rs/cast-linux-amd64/bin/cast   # a client in the tests
STAMP=.venv/.setup-stamp   # inside .venv, so a new venv always reinstalls

# --- Debian packages: later features need them; a failure here is a warning only.
apt_missing=()
{ command -v nats-server || [[ -x /usr/sbin/nats-server ]]; } >/dev/null 2>&1 || apt_missing+=(nats-server)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || apt_missing+=(postgresql)
[[ -x /usr/bin/chromium ]] || apt_missing+=(chromium)   # the dashboard's browser test
if ((${#apt_missing[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "apt: installing ${apt_missing[*]}"
        apt_log=$(mktemp -t rollup-setup-apt.XXXXXX)
        if DEBIAN_FRONTEND=noninteractive apt-get update -q >"$apt_log" 2>&1 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                "${apt_missing[@]}" >>"$apt_log" 2>&1; then
            rm -f "$apt_log"
        else
            tail -n 5 "$apt_log" >&2 || true
            say "WARNING: apt-get install ${apt_missing[*]} failed (log: $apt_log); continuing"
        fi
    else
        say "WARNING: missing ${apt_missing[*]} (install them with apt-get as root); continuing"
    fi
fi

# --- Python venv
if [[ -x .venv/bin/python ]] && ! .venv/bin/python -c '' 2>/dev/null; then
    say "python: .venv is broken, recreating it"
    rm -rf .venv
fi
if [[ ! -x .venv/bin/python ]]; then
    py=$(command -v python3.11 || command -v python3 || true)
    [[ -n $py ]] || die "python3.11 (or python3) not found"
    say "python: creating .venv with $("$py" -V 2>&1)"
    "$py" -m venv .venv
fi
if [[ -f $STAMP && $STAMP -nt pyproject.toml && $STAMP -nt constraints.txt ]]; then
    say "python: .venv up to date"
else
    say "python: installing -c constraints.txt -e .[dev] (log: .venv/setup-pip.log)"
    if ! { .venv/bin/python -m pip install -q --upgrade pip &&
        .venv/bin/python -m pip install -q --progress-bar off -c constraints.txt -e '.[dev]'; } \
        >.venv/setup-pip.log 2>&1; then
        tail -n 20 .venv/setup-pip.log >&2
        die "pip install failed (full log: .venv/setup-pip.log)"
    fi
    touch "$STAMP"
fi

# --- Node tools (Anvil, solc)
if [[ -f node_modules/.package-lock.json && node_modules/.package-lock.json -nt package-lock.json &&
    node_modules/.package-lock.json -nt package.json ]]; then
    say "node: node_modules up to date"
else
    command -v npm >/dev/null 2>&1 || die "npm not found (Node.js 20+ is needed for Anvil and solc)"
    # Not `npm ci`: the registry we reach lacks Anvil's other-platform packages
    # (@foundry-rs/anvil-darwin-*, ...), so the lock cannot list them and `npm ci` refuses it as
    # out of sync. `npm install --no-save` installs exactly the locked tree and never rewrites it.
    say "node: npm install --no-save (from package-lock.json)"
    npm install --no-save --no-audit --no-fund --loglevel=error >/dev/null
    touch node_modules/.package-lock.json
fi
"$ANVIL" --version >/dev/null 2>&1 || die "$ANVIL does not run; delete node_modules and run again"
"$CAST" --version >/dev/null 2>&1 || die "$CAST does not run; delete node_modules and run again"
say "ready: $(.venv/bin/python -V), $("$ANVIL" --version | head -n 1)"
