# Shell functions shared by packaging/image/update-lock and packaging/build-image (sourced, not run).
# Everything fetched from the network goes through fetch_verified: it is kept only when its
# digest matches the pinned value, in a cache keyed by that digest.

say() { echo "${0##*/}: $*" >&2; }
die() { say "$*"; exit 1; }

# The npm-style integrity of a file: sha512-<base64 of the raw digest>.
integrity_of() {
  printf 'sha512-%s' "$(sha512sum "$1" | cut -d' ' -f1 | tr a-f A-F | basenc --base16 -d | base64 -w0)"
}

# fetch_verified URL KIND DIGEST DEST: download URL (or take it from the cache) to DEST, where KIND
# is sha256 (DIGEST hex) or integrity (DIGEST sha512-base64). A mismatch fails naming the URL and
# both digests; nothing unverified reaches DEST.
fetch_verified() {
  local url=$1 kind=$2 want=$3 dest=$4 cache got key
  cache="${CLAWSTER_CACHE:-/var/tmp/clawster}/image/downloads"
  key=$(printf '%s' "$want" | sha256sum | cut -c1-40)
  mkdir -p "$cache"
  if [[ ! -s "$cache/$key" ]]; then
    curl -fsSL --retry 3 --connect-timeout 20 -o "$cache/$key.part" "$url" ||
      die "download failed: $url (a moved mirror or a removed version: regenerate the lock with packaging/image/update-lock)"
    got=$(digest_of "$kind" "$cache/$key.part")
    if [[ "$got" != "$want" ]]; then
      rm -f "$cache/$key.part"
      die "$url has $kind $got, the lock pins $want: refusing it"
    fi
    mv "$cache/$key.part" "$cache/$key"
  fi
  # Re-check the cached copy too: the cache is a directory anyone with root could edit.
  got=$(digest_of "$kind" "$cache/$key")
  [[ "$got" == "$want" ]] || die "cached $url ($cache/$key) has $kind $got, expected $want"
  cp "$cache/$key" "$dest"
}

digest_of() { # KIND FILE
  case "$1" in
    sha256) sha256sum "$2" | cut -d' ' -f1 ;;
    integrity) integrity_of "$2" ;;
    *) die "unknown digest kind $1" ;;
  esac
}

# The Debian architecture name of one of ours.
deb_arch() {
  case "$1" in
    x86_64) echo amd64 ;;
    arm64) echo arm64 ;;
    *) die "unknown architecture $1 (x86_64 or arm64)" ;;
  esac
}

# lock_field FILE KEY ARCH FIELD: field FIELD (3=version 4=url 5=integrity) of the line `KEY ARCH ...`.
lock_field() {
  awk -v k="$2" -v a="$3" -v f="$4" '$1 == k && $2 == a { print $f; found = 1 } END { exit !found }' "$1" ||
    die "$1 has no '$2 $3' line: run packaging/image/update-lock"
}

# Unpacks a verified node-linux-* tarball into DIR (bin/node and LICENSE only: headers and docs
# are not needed to run it).
unpack_node() { # TARBALL DIR
  mkdir -p "$2/bin"
  tar -xzf "$1" -C "$2" --strip-components=1 --no-same-owner package/bin/node package/LICENSE
}

# Unpacks a verified npm tarball into DIR (npm's own tarball bundles its dependencies).
unpack_npm() { # TARBALL DIR
  mkdir -p "$2"
  tar -xzf "$1" -C "$2" --strip-components=1 --no-same-owner
}
