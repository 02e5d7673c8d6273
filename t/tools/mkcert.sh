#!/bin/sh
# mkcert.sh NAME [DIR]
#
# A self-signed test certificate for NAME: DIR/NAME.crt and DIR/NAME.key
# (DIR defaults to $TEST_NGINX_CERT_DIR). Subject CN=NAME, subjectAltName
# DNS:NAME (plus IP:127.0.0.1 when NAME is localhost), EC P-256 key, valid
# for 10 years. Both files are written under temporary names and renamed into
# place, key first, so a server reading DIR never sees a half-written file.
# Used by Test::CodeB (make_cert, and the certificates of every run) and
# usable from a --- ws "shell" line:
#     shell $TEST_NGINX_ROOT/t/tools/mkcert.sh c.test $TEST_NGINX_SERVROOT/certs2
set -eu

name=${1:?usage: mkcert.sh NAME [DIR]}
dir=${2:-${TEST_NGINX_CERT_DIR:?usage: mkcert.sh NAME [DIR] (or set TEST_NGINX_CERT_DIR)}}

case $name in
    *[!A-Za-z0-9._-]* | .* | '') echo "mkcert.sh: bad name '$name' (letters, digits, . _ -)" >&2; exit 2 ;;
esac

san="DNS:$name"
[ "$name" = localhost ] && san="$san,IP:127.0.0.1"

mkdir -p "$dir"
tmp="$dir/.$name.$$"
trap 'rm -f "$tmp.key" "$tmp.crt"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -days 3650 -subj "/CN=$name" -addext "subjectAltName=$san" \
    -keyout "$tmp.key" -out "$tmp.crt" 2>"$tmp.err" || { cat "$tmp.err" >&2; rm -f "$tmp.err"; exit 1; }
rm -f "$tmp.err"
chmod 644 "$tmp.key" "$tmp.crt"    # nginx workers may run as another user
mv -f "$tmp.key" "$dir/$name.key"
mv -f "$tmp.crt" "$dir/$name.crt"
