#!/bin/bash
# Builds the podman lab's three small images from this machine's own binaries (no registry, air-gapped):
#   localhost/owb-busybox:latest   busybox-static
#   localhost/owb-pg15:latest      busybox + PostgreSQL 15 server and clients + their libraries
#   localhost/owb-redis:latest     busybox + redis-server + its libraries
# Usage: LAB=/tmp/owbpod-x podman_images.sh   ($LAB holds containers.conf and storage.conf; podman_lab.py runs it)
set -euo pipefail
LAB=${LAB:?set LAB to the lab folder (it holds containers.conf and storage.conf)}
export CONTAINERS_CONF=$LAB/containers.conf CONTAINERS_STORAGE_CONF=$LAB/storage.conf
WORK=$LAB/rootfs
PG_UID=999     # "postgres" inside the image
REDIS_UID=998  # "redis" inside the image
PGBIN=/usr/lib/postgresql/15/bin
[ -x "$PGBIN/postgres" ] || { echo "PostgreSQL 15 server not found in $PGBIN (apt-get install postgresql-15)" >&2; exit 1; }
rm -rf "$WORK"; mkdir -p "$WORK"

base_rootfs() {  # $1 = folder: busybox and a minimal /etc (made once, then copied)
  local d=$1
  if [ -d "$WORK/.base" ]; then cp -a "$WORK/.base" "$d"; return; fi
  mkdir -p "$d"/{bin,etc,tmp,usr/bin,usr/lib,usr/lib64,usr/share,var/run,run,data,sockets}
  chmod 1777 "$d/tmp" "$d/sockets"
  ln -s usr/lib "$d/lib"; ln -s usr/lib64 "$d/lib64"
  cp "$(command -v busybox)" "$d/bin/busybox"  # busybox-static: no libraries needed
  for a in $("$d/bin/busybox" --list); do
    [ "$a" = busybox ] || ln -sf busybox "$d/bin/$a"
  done
  cat > "$d/etc/passwd" <<EOF
root:x:0:0:root:/root:/bin/sh
postgres:x:$PG_UID:$PG_UID:postgres:/var/lib/postgresql:/bin/sh
redis:x:$REDIS_UID:$REDIS_UID:redis:/data:/bin/sh
nobody:x:65534:65534:nobody:/:/bin/false
EOF
  cat > "$d/etc/group" <<EOF
root:x:0:
postgres:x:$PG_UID:
redis:x:$REDIS_UID:
nogroup:x:65534:
EOF
  cp -a "$d" "$WORK/.base"
}

copy_with_libs() {  # $1 = rootfs, rest = ELF files: copies them and their ldd dependencies (same paths)
  local d=$1; shift
  local lib
  for lib in "$@" $(ldd "$@" 2>/dev/null | awk '/=>/ {print $3} /^[ \t]*\// && !/:$/ {print $1}' | sort -u); do
    [ -e "$d$lib" ] && continue
    mkdir -p "$(dirname "$d$lib")"; cp -L "$lib" "$d$lib"
  done
}

import_image() {  # $1 = rootfs folder, $2 = image name, rest = --change arguments
  local d=$1 name=$2; shift 2
  tar --numeric-owner -C "$d" -cf "$d.tar" .
  podman rmi -f "$name" >/dev/null 2>&1 || true
  podman import --quiet --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin' "$@" \
    "$d.tar" "$name" >/dev/null
  rm -f "$d.tar"
}

# ---- busybox
B=$WORK/busybox; base_rootfs "$B"
import_image "$B" localhost/owb-busybox:latest --change 'CMD ["/bin/sh"]'

# ---- PostgreSQL 15
P=$WORK/pg15; base_rootfs "$P"
copy_with_libs "$P" $PGBIN/{postgres,initdb,pg_ctl,pg_dump,pg_restore,pg_dumpall,psql,pg_isready}
# server modules (plpgsql, uuid-ossp, btree_gist...); not llvmjit (it pulls in LLVM): jit is off
# shellcheck disable=SC2046
copy_with_libs "$P" $(ls /usr/lib/postgresql/15/lib/*.so | grep -v llvmjit)
# share folder (extensions' SQL) and the system tzdata (Debian builds PostgreSQL --with-system-tzdata)
tar -C / -cf - usr/share/postgresql/15 usr/share/zoneinfo | tar -C "$P" -xf -
mkdir -p "$P/usr/local/bin" "$P/var/lib/postgresql/data"
chown -R $PG_UID:$PG_UID "$P/var/lib/postgresql"
chmod 700 "$P/var/lib/postgresql/data"
for b in postgres initdb pg_ctl pg_dump pg_restore pg_dumpall psql pg_isready; do
  ln -s $PGBIN/$b "$P/usr/local/bin/$b"
done
cat > "$P/usr/local/bin/pg-entrypoint" <<'EOF'
#!/bin/sh
# Runs as postgres. Unix socket in /sockets (bind-mounted from the host); TCP only when PG_LISTEN is set.
set -e
: "${PGDATA:=/var/lib/postgresql/data}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  initdb -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C >/tmp/initdb.log 2>&1 \
    || { cat /tmp/initdb.log >&2; exit 1; }
fi
exec postgres -D "$PGDATA" -k /sockets -c listen_addresses="${PG_LISTEN:-}" \
     -c port="${PG_PORT:-5432}" -c jit=off -c fsync=off "$@"
EOF
chmod 755 "$P/usr/local/bin/pg-entrypoint"
import_image "$P" localhost/owb-pg15:latest \
  --change 'ENV PGDATA=/var/lib/postgresql/data' \
  --change "USER postgres" \
  --change 'ENTRYPOINT ["/usr/local/bin/pg-entrypoint"]' \
  --change 'STOPSIGNAL SIGINT'

# ---- redis
R=$WORK/redis; base_rootfs "$R"
REDIS=$(readlink -f "$(command -v redis-server)")
copy_with_libs "$R" "$REDIS"
[ -e "$R/usr/bin/redis-server" ] || ln -s "$REDIS" "$R/usr/bin/redis-server"
chown $REDIS_UID:$REDIS_UID "$R/data"
import_image "$R" localhost/owb-redis:latest \
  --change "USER redis" \
  --change 'WORKDIR /data' \
  --change 'CMD ["redis-server", "--port", "0", "--dir", "/data", "--unixsocket", "/sockets/redis.sock", "--unixsocketperm", "777"]'

rm -rf "$WORK"
