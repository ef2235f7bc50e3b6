#!/usr/bin/env bash
# Builds the oz-bridge image from the Dockerfile.
#
#   scripts/build-image.sh [--tag NAME] [--engine docker|buildah] [--pull] [--no-cache]
#
# Docker is used where an engine answers. Otherwise buildah builds it without a daemon (as root: vfs
# storage, chroot isolation). When the Dockerfile's base image is not in buildah's local storage it is
# bootstrapped from Debian's archive with mmdebstrap (cached in $OZ_BRIDGE_CACHE/base), so no container
# registry is needed; --pull asks the registry instead.
#
# Environment: OZ_BRIDGE_CACHE (default /var/cache/oz-bridge), OZ_BRIDGE_ENGINE (docker, buildah),
# BUILDAH_STORAGE_DRIVER (default vfs). The image's tag is printed on the last line.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${OZ_BRIDGE_CACHE:-/var/cache/oz-bridge}
ENGINE=${OZ_BRIDGE_ENGINE:-}
STORAGE_DRIVER=${BUILDAH_STORAGE_DRIVER:-vfs}
TAG=
PULL=no
CACHE_FLAGS=()

die() { echo "build-image: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    -t|--tag) TAG=${2:?--tag needs a name}; shift 2 ;;
    --engine) ENGINE=${2:?--engine needs docker or buildah}; shift 2 ;;
    --pull) PULL=yes; shift ;;
    --no-cache) CACHE_FLAGS=(--no-cache); shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/pyproject.toml" | head -n1)
[ -n "$VERSION" ] || die "no version = \"…\" in pyproject.toml"
REVISION=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ]; then REVISION=$REVISION-dirty; fi
TAG=${TAG:-oz-bridge:$VERSION}
BASE=$(sed -n 's/^ARG BASE=//p' "$ROOT/Dockerfile" | head -n1)
[ -n "$BASE" ] || die "the Dockerfile has no 'ARG BASE=' default"
BUILD_ARGS=(--build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION")

if [ -z "$ENGINE" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then ENGINE=docker
  elif command -v buildah >/dev/null; then ENGINE=buildah
  else die "neither a Docker engine nor buildah found; on Debian or Ubuntu: apt-get install buildah mmdebstrap"
  fi
fi

bah() { buildah --storage-driver "$STORAGE_DRIVER" "$@"; }

# The Dockerfile's base, named as the registry would name it: debian:bookworm-slim → docker.io/library/….
qualified() {
  local name=$1
  case "$name" in
    */*) case "${name%%/*}" in *.*|*:*|localhost) ;; *) name=docker.io/$name ;; esac ;;
    *) name=docker.io/library/$name ;;
  esac
  echo "$name"
}

# The apt settings Debian's official images carry (debuerreotype's docker-clean and friends): no
# package cache left in a layer, no translations, compressed indexes.
write_docker_apt_config() {
  local dir=$1 clean='"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true";'
  printf 'DPkg::Post-Invoke { %s };\nAPT::Update::Post-Invoke { %s };\nDir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n' \
    "$clean" "$clean" >"$dir/docker-clean"
  echo 'Acquire::Languages "none";' >"$dir/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$dir/docker-gzip-indexes"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$dir/docker-autoremove-suggests"
}

# debian:<suite>-slim, rebuilt from Debian's archive the way Debian's official images are made: the
# minbase variant (Essential and Priority: required, plus apt), merged /usr, no documentation or man
# pages, no device nodes.
bootstrap_base() {
  local base=$1 ref suite tarball
  ref=$(qualified "$base")
  case "$ref" in
    docker.io/library/debian:*-slim) suite=${ref#docker.io/library/debian:}; suite=${suite%-slim} ;;
    *) die "cannot bootstrap '$base' with mmdebstrap (only debian:<suite>-slim); build with --pull" ;;
  esac
  command -v mmdebstrap >/dev/null || die "mmdebstrap is needed to bootstrap $base: apt-get install mmdebstrap"
  tarball=$CACHE/base/debian-$suite-slim.tar
  if [ ! -s "$tarball" ]; then
    echo "build-image: bootstrapping $base from Debian's archive into $tarball" >&2
    mkdir -p "$CACHE/base/apt.conf.d"
    write_docker_apt_config "$CACHE/base/apt.conf.d"
    # shellcheck disable=SC2016  # the hooks' "$1" is the chroot, expanded by mmdebstrap
    mmdebstrap --quiet --mode=root --variant=minbase --format=tar --skip=output/dev \
      --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
      --customize-hook="copy-in $(echo "$CACHE"/base/apt.conf.d/docker-*) /etc/apt/apt.conf.d" \
      --customize-hook='rm -f "$1"/var/cache/apt/*.bin' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
      "$suite" "$tarball.part"   # no mirror given: Debian's default, with -updates and -security
    mv "$tarball.part" "$tarball"
  fi
  local context
  context=$(mktemp -d)
  ln "$tarball" "$context/rootfs.tar" 2>/dev/null || cp "$tarball" "$context/rootfs.tar"
  printf 'FROM scratch\nADD rootfs.tar /\nCMD ["bash"]\n' >"$context/Containerfile"
  bah build --quiet --isolation chroot --format docker \
    --label "io.oz-bridge.base=mmdebstrap $suite minbase, $(date -u -r "$tarball" +%Y-%m-%dT%H:%M:%SZ)" \
    --tag "$ref" --file "$context/Containerfile" "$context" >/dev/null
  rm -rf "$context"
  echo "build-image: $ref is the local bootstrap of $suite" >&2
}

# pip inside the build reaches the package index the way this machine's pip does: the same CA bundle
# (a TLS-inspecting proxy needs it) and the same http(s) indexes, in a pip.conf mounted for the build
# only, on /mnt (empty in the base, so the mount leaves nothing behind in a layer) and named by the
# Dockerfile's PIP_CONFIG_FILE build argument. Nothing of this machine reaches the Dockerfile or the image.
pip_build_config() {
  local cert index extra dir urls=() url
  cert=${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || true)}
  index=${PIP_INDEX_URL:-$(python3 -m pip config get global.index-url 2>/dev/null || true)}
  extra=${PIP_EXTRA_INDEX_URL:-$(python3 -m pip config get global.extra-index-url 2>/dev/null || true)}
  dir=$CACHE/build/pip
  rm -rf "$dir" && mkdir -p "$dir"
  {
    echo "[global]"
    if [ -n "$cert" ] && [ -f "$cert" ]; then cp "$cert" "$dir/ca.crt"; echo "cert = /mnt/ca.crt"; fi
    case "$index" in http://*|https://*) echo "index-url = $index" ;; esac
    for url in $extra; do case "$url" in http://*|https://*) urls+=("$url") ;; esac; done
    if [ ${#urls[@]} -gt 0 ]; then echo "extra-index-url = ${urls[*]}"; fi
  } >"$dir/pip.conf"
  echo "--volume=$dir:/mnt:ro"
  echo "--build-arg=PIP_CONFIG_FILE=/mnt/pip.conf"
}

# With vfs every cached step is a full copy of the file system, so the cache of earlier builds is
# dropped once a build succeeds: the untagged images this build did not use or make (its log names
# each one it did) go.
forget_stale_layers() {
  local log=$1 id used kept=()
  mapfile -t kept < <(grep -oE '^--> (Using cache )?[0-9a-f]{11,64}' "$log" | grep -oE '[0-9a-f]{11,64}$')
  # Newest first, so that children go before the images they were built on.
  bah images --all --no-trunc --format '{{.ID}} {{.Name}}' | while read -r id name; do
    [ "$name" = "<none>" ] || continue
    id=${id#sha256:}
    used=no
    for k in "${kept[@]}"; do case "$id" in "$k"*) used=yes; break ;; esac; done
    if [ "$used" = no ]; then bah rmi "$id" >/dev/null 2>&1 || true; fi
  done
}

case "$ENGINE" in
  docker)
    # Docker mounts nothing into a build; a mirror this machine's pip uses still applies.
    index=${PIP_INDEX_URL:-$(python3 -m pip config get global.index-url 2>/dev/null || true)}
    case "$index" in http://*|https://*) BUILD_ARGS+=(--build-arg "PIP_INDEX_URL=$index") ;; esac
    docker build "${CACHE_FLAGS[@]}" "${BUILD_ARGS[@]}" --tag "$TAG" "$ROOT" >&2
    ;;
  buildah)
    PULL_FLAG=(--pull=never)
    if [ "$PULL" = yes ]; then PULL_FLAG=(--pull=true)
    elif [ -z "$(bah images --quiet "$(qualified "$BASE")" 2>/dev/null)" ]; then bootstrap_base "$BASE"
    fi
    mapfile -t MOUNTS < <(pip_build_config)
    log=$(mktemp)
    bah build "${CACHE_FLAGS[@]}" "${BUILD_ARGS[@]}" "${PULL_FLAG[@]}" "${MOUNTS[@]}" \
      --isolation chroot --format docker --layers \
      --tag "$TAG" --file "$ROOT/Dockerfile" "$ROOT" | tee "$log" >&2
    forget_stale_layers "$log"
    rm -f "$log"
    ;;
  *) die "unknown engine '$ENGINE' (docker or buildah)" ;;
esac
echo "$TAG"
