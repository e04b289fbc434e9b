#!/bin/sh
# One-shot: issues the demo CA and every certificate the compose stack needs into /certs.
# Runs once (keeps existing certificates on later `docker compose up`).
#
#   ca.crt                  the demo CA (clients use it as sslrootcert)
#   postgres.{crt,key}      PostgreSQL's server certificate (CN/SAN postgres)
#   pgward.{crt,key}        pgward's client certificate for PostgreSQL (CN=pgward, mTLS)
#   pgward-server.{crt,key} pgward's server certificate for its clients (SAN pgward, localhost)
#   <user>.{crt,key}        client certificates for the demo logins (CN = user name)
set -eu

OUT=${CERTS_DIR:-/certs}
POSTGRES_UID=999   # the postgres user in the official postgres image
PGWARD_UID=10001   # the pgward user in this repo's Dockerfile
USERS="alice bob app mia"

if [ -s "$OUT/ca.crt" ]; then
    echo "certificates already in $OUT, keeping them"
    exit 0
fi
command -v openssl >/dev/null 2>&1 || apk add --no-cache openssl >/dev/null

umask 077
cd "$OUT"
TMP=$(mktemp -d)

openssl req -x509 -new -nodes -days 825 \
    -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -subj "/CN=pgward demo CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout ca.key -out ca.crt

# issue NAME CN EXTENDED_KEY_USAGE [SAN]
issue() {
    name=$1 cn=$2 eku=$3 san=${4:-}
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature"
        echo "extendedKeyUsage=$eku"
        if [ -n "$san" ]; then echo "subjectAltName=$san"; fi
    } >"$TMP/$name.ext"
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -subj "/CN=$cn" -keyout "$name.key" -out "$TMP/$name.csr"
    openssl x509 -req -in "$TMP/$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
        -days 825 -sha256 -extfile "$TMP/$name.ext" -out "$name.crt"
}

issue postgres postgres serverAuth "DNS:postgres,DNS:localhost"
issue pgward pgward clientAuth
issue pgward-server pgward serverAuth "DNS:pgward,DNS:localhost,IP:127.0.0.1"
for user in $USERS; do
    issue "$user" "$user" clientAuth
done

# Keys readable only by the process that uses them; libpq and PostgreSQL insist on 0600.
chmod 0644 ./*.crt
chmod 0600 ./*.key
chown "$POSTGRES_UID:$POSTGRES_UID" postgres.key
chown "$PGWARD_UID:$PGWARD_UID" pgward.key pgward-server.key
rm -f ca.key ca.srl
rm -rf "$TMP"
echo "certificates written to $OUT"
