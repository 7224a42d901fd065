#!/usr/bin/env sh
# Writes a SAMPLE self-signed certificate for deploy/nginx.conf: sample.crt and sample.key
# in the directory given (default: deploy/tls next to this script), valid 10 years for
# localhost and 127.0.0.1. For trying nginx in front of shopgraph and for the tests only:
# a browser or client must be told to trust it (curl --cacert, httpx verify=); in
# production use a certificate from a real CA (e.g. Let's Encrypt).
set -eu
out="${1:-$(dirname "$0")/tls}"
mkdir -p "$out"
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
    -subj "/O=shopgraph SAMPLE (not for production)/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -keyout "$out/sample.key" -out "$out/sample.crt" 2>/dev/null
chmod 600 "$out/sample.key"
echo "wrote $out/sample.crt and $out/sample.key (SAMPLE, self-signed)"
