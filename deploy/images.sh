#!/usr/bin/env bash
# Builds the compose cluster's images from one release build, with no base image
# (this machine's Docker has no registry): `sundial:latest` holds our binaries,
# `sundial-etcd:latest` Debian's etcd and etcdctl; each on `scratch` with exactly
# the shared libraries `ldd` lists. Also writes the cluster's shared secret into
# an ignored `.env` the first time. Prints the images' sizes.
#
#   deploy/images.sh            (make images)
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
BINS=(sundial sundial-store sundial-gateway sundial-meta sundial-ctl sundial-otlp-sink)
args=(); for b in "${BINS[@]}"; do args+=(--bin "$b"); done
cargo build --release -q "${args[@]}"
REL=${CARGO_TARGET_DIR:-target}/release

. scripts/apt-need.sh
apt_need etcd:etcd-server etcdctl:etcd-client

STAGE=target/docker
rm -rf "$STAGE"

# stage DIR DEST_BIN_DIR FILE...: the files, the libraries they link and the
# loader, at their own paths under DIR/rootfs; /tmp; hosts lookups through
# /etc/hosts first, then DNS (Compose's service names).
stage() {
  local dir=$1 bindir=$2; shift 2
  local root="$dir/rootfs"
  mkdir -p "$root$bindir" "$root/etc" "$root/tmp" "$dir/data"
  chmod 1777 "$root/tmp"
  chmod 700 "$dir/data"
  printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
  printf 'root:x:0:0:root:/:/nonexistent\nnonroot:x:65532:65532:nonroot:/var/lib:/nonexistent\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' > "$root/etc/group"
  local f lib
  for f in "$@"; do
    cp "$f" "$root$bindir/"
    # Symbols stay (readable backtraces); the line tables stay on the host.
    strip --strip-debug "$root$bindir/$(basename "$f")"
    # `ldd` lines: "libx.so => /path (addr)" or "/lib64/ld-linux… (addr)".
    for lib in $(ldd "$f" | awk '/=> \//{print $3} /^[ \t]*\//{print $1}'); do
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done
  done
}

stage "$STAGE/sundial" /usr/local/bin $(printf "$REL/%s " "${BINS[@]}")
stage "$STAGE/etcd" /usr/bin "$(command -v etcd)" "$(command -v etcdctl)"
cp deploy/sundial.Dockerfile "$STAGE/sundial/Dockerfile"
cp deploy/etcd.Dockerfile "$STAGE/etcd/Dockerfile"

docker build -q -t sundial:latest "$STAGE/sundial" >/dev/null
docker build -q -t sundial-etcd:latest "$STAGE/etcd" >/dev/null

# The nodes' shared secret: generated once, kept out of git (.gitignore).
if [ ! -f .env ] || ! grep -q '^SUNDIAL_SHARED_SECRET=' .env; then
  echo "SUNDIAL_SHARED_SECRET=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" >> .env
  echo "wrote a new shared secret to .env"
fi

docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^sundial(-etcd)?:latest ' \
  | sed 's/^/image /'
echo "images built in $((SECONDS - started))s (release build included)"
