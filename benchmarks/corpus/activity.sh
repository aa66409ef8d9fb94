#!/usr/bin/env bash
# Real benign activity for the detection-quality corpus (benchmarks/corpus/record.sh runs it under
# `vigil-agent --stdout`). Package installs from the distribution mirror, pip from the local wheel
# cache, compiling and running C programs, git work on a clone, the unit tests, archives, local HTTP.
# No sshd on the recording machine, so no `ssh localhost` (see docs/detection-quality.md).
set -u
REPO=${REPO:-/work/main}
W=$(mktemp -d /tmp/vigil-corpus.XXXXXX)
ROUNDS=${ROUNDS:-3}
log() { echo "[activity] $*" >&2; }

log "packages: install and remove from the Debian mirror"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends tree jq >/dev/null 2>&1 || log "apt install failed"
tree -L 1 /usr >/dev/null 2>&1; echo '{"a":1}' | jq .a >/dev/null 2>&1
DEBIAN_FRONTEND=noninteractive apt-get remove -y -q tree >/dev/null 2>&1 || true

log "pip: a virtualenv from the local wheel cache"
python3 -m venv "$W/venv" && "$W/venv/bin/pip" install -q --no-index --find-links /opt/wheels msgspec >/dev/null 2>&1 || log "pip failed"
"$W/venv/bin/python" -c "import msgspec; print(msgspec.__version__)" >/dev/null 2>&1

for round in $(seq "$ROUNDS"); do
  log "round $round: compile and run C programs"
  mkdir -p "$W/c$round" && cd "$W/c$round" || exit 1
  for i in $(seq 60); do
    printf '#include <stdio.h>\nint main(void){int s=0;for(int k=0;k<%d;k++)s+=k;printf("%%d\\n",s);return 0;}\n' "$i" > "p$i.c"
    gcc -O1 -o "p$i" "p$i.c" && "./p$i" >/dev/null
  done
  printf 'all: $(patsubst %%.c,%%.o,$(wildcard *.c))\n%%.o: %%.c\n\tgcc -c -O2 $< -o $@\n' > Makefile
  make -s -j2 >/dev/null 2>&1; make -s clean >/dev/null 2>&1 || true

  log "round $round: git on a clone"
  rm -rf "$W/git" && git clone -q "$REPO" "$W/git" && cd "$W/git" || exit 1
  git log --oneline | head -50 >/dev/null
  for f in $(git ls-files '*.py' | head -80); do git log -1 --format=%h -- "$f" >/dev/null; git blame -s "$f" >/dev/null 2>&1; done
  git checkout -q -b "corpus-$round"; echo "# $round" >> README.md 2>/dev/null || echo x > README.md
  git -c user.email=c@example.invalid -c user.name=corpus commit -qam "corpus round $round" >/dev/null 2>&1
  git diff HEAD~1 --stat >/dev/null; git status --short >/dev/null; git gc -q --prune=now >/dev/null 2>&1

  log "round $round: archives, search, shell tools"
  tar czf "$W/src.tgz" -C "$W/git" . && mkdir -p "$W/x" && tar xzf "$W/src.tgz" -C "$W/x"
  find "$W/x" -name '*.py' | xargs grep -l "import" | wc -l >/dev/null
  for f in $(find "$W/x" -name '*.md' | head -40); do wc -l "$f" >/dev/null; sed -n 1,3p "$f" >/dev/null; awk 'END{print NR}' "$f" >/dev/null; done
  ps aux >/dev/null; df -h >/dev/null; du -sh "$W" >/dev/null; uname -a >/dev/null; id >/dev/null; date >/dev/null

  log "round $round: package inventory (dpkg) and an integrity scan (sha256sum, stat), like a nightly cron job"
  for p in $(dpkg-query -W -f '${Package}\n' | head -"${PKGS:-300}"); do dpkg -L "$p" >/dev/null 2>&1; dpkg-query -s "$p" >/dev/null 2>&1; done
  find /usr/share/doc /usr/lib/python3 -type f 2>/dev/null | head -"${SCAN:-8000}" | while read -r f; do
    sha256sum "$f" >/dev/null; stat -c %s "$f" >/dev/null
  done

  log "round $round: local HTTP server and clients"
  (cd "$W/x" && exec python3 -m http.server 18765 --bind 127.0.0.1 >/dev/null 2>&1) &
  HTTP=$!
  sleep 1
  for i in $(seq 40); do curl -s -o /dev/null "http://127.0.0.1:18765/README.md"; done
  python3 - <<'PY'
import urllib.request
for _ in range(40):
    urllib.request.urlopen("http://127.0.0.1:18765/").read()
PY
  kill "$HTTP" 2>/dev/null; wait "$HTTP" 2>/dev/null

  log "round $round: the unit tests"
  (cd "$REPO" && .venv/bin/pytest tests/unit -q -x -p no:cacheprovider >/dev/null 2>&1) || log "tests failed"
done
rm -rf "$W"
log "done"
