#!/bin/sh
# Install or upgrade vigil-agent from this unpacked artifact (run as root).
#   ./install.sh [--stream NAME] [--region R] [--endpoint-url URL] [--account-id ID] [--no-start]
# Keeps an existing /etc/vigil/agent.toml unless --stream is given. Needs python3 >= 3.11 and
# pip access to msgspec, dnslib, boto3 and isal (or a wheels/ directory in the artifact, for
# offline). The eBPF sensor needs the system's libbpf.so.1 (installed here when missing, best
# effort); without it the agent runs on audit alone and says so in every heartbeat.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=/opt/vigil-agent
STREAM="" REGION="" ENDPOINT="" ACCOUNT="" START=1
while [ $# -gt 0 ]; do
  case "$1" in
    --stream) STREAM=$2; shift 2 ;;
    --region) REGION=$2; shift 2 ;;
    --endpoint-url) ENDPOINT=$2; shift 2 ;;
    --account-id) ACCOUNT=$2; shift 2 ;;
    --no-start) START=0; shift ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }

find_python() {
  for p in python3.13 python3.12 python3.11 python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      command -v "$p"; return 0
    fi
  done
  return 1
}
PY=$(find_python || true)
if [ -z "$PY" ]; then
  if command -v dnf >/dev/null 2>&1; then dnf install -y -q python3.11 python3.11-pip
  elif command -v yum >/dev/null 2>&1; then yum install -y -q python3.11
  elif command -v apt-get >/dev/null 2>&1; then apt-get install -y -q python3.11 python3.11-venv
  fi
  PY=$(find_python) || { echo "install.sh: python >= 3.11 is required" >&2; exit 1; }
fi

if ! ldconfig -p 2>/dev/null | grep -q 'libbpf\.so\.1 '; then
  if command -v dnf >/dev/null 2>&1; then dnf install -y -q libbpf || true
  elif command -v yum >/dev/null 2>&1; then yum install -y -q libbpf || true
  elif command -v apt-get >/dev/null 2>&1; then apt-get install -y -q libbpf1 || true
  fi
fi

VERSION=$(cat "$HERE/VERSION")
NEW="$PREFIX/releases/$VERSION"
rm -rf "$NEW.tmp" && mkdir -p "$NEW.tmp"
"$PY" -m venv "$NEW.tmp/venv"
if [ -d "$HERE/wheels" ]; then
  "$NEW.tmp/venv/bin/pip" install -q --no-index --find-links "$HERE/wheels" -r "$HERE/requirements.txt"
else
  "$NEW.tmp/venv/bin/pip" install -q -r "$HERE/requirements.txt"
fi
cp -R "$HERE/lib" "$NEW.tmp/lib"
mkdir -p "$NEW.tmp/bin"
cat > "$NEW.tmp/bin/vigil-agent" <<WRAP
#!/bin/sh
PYTHONPATH="$PREFIX/current/lib" exec "$PREFIX/current/venv/bin/python" -m vigil_agent.main "\$@"
WRAP
chmod 755 "$NEW.tmp/bin/vigil-agent"
rm -rf "$NEW" && mv "$NEW.tmp" "$NEW"
ln -sfn "$NEW" "$PREFIX/current.new" && mv -T "$PREFIX/current.new" "$PREFIX/current"
ln -sfn "$PREFIX/current/bin" "$PREFIX/bin"

mkdir -p /etc/vigil /var/lib/vigil && chmod 700 /var/lib/vigil
if [ -n "$STREAM" ]; then
  TMP=$(mktemp /etc/vigil/agent.toml.XXXXXX)
  {
    echo "# written by install.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) from the stack outputs"
    echo "[agent]"
    [ -n "$ACCOUNT" ] && echo "account_id = \"$ACCOUNT\""
    [ -n "$REGION" ] && echo "region = \"$REGION\""
    echo "[kinesis]"
    echo "stream = \"$STREAM\""
    [ -n "$REGION" ] && echo "region = \"$REGION\""
    [ -n "$ENDPOINT" ] && echo "endpoint_url = \"$ENDPOINT\""
  } > "$TMP"
  chmod 644 "$TMP" && mv "$TMP" /etc/vigil/agent.toml
elif [ ! -f /etc/vigil/agent.toml ]; then
  cp "$HERE/packaging/agent.toml" /etc/vigil/agent.toml
fi
"$PREFIX/bin/vigil-agent" --check-config

if [ -d /run/systemd/system ]; then
  install -m 644 "$HERE/packaging/vigil-agent.service" /etc/systemd/system/vigil-agent.service
  systemctl daemon-reload
  systemctl enable vigil-agent.service >/dev/null
  [ "$START" = 1 ] && systemctl restart vigil-agent.service
fi
# keep the two newest releases
ls -1dt "$PREFIX"/releases/* 2>/dev/null | tail -n +3 | xargs -r rm -rf
echo "vigil-agent $VERSION installed"
