#!/usr/bin/env bash
# Builds the real back end that the live tests run, from Go modules (no docker):
#   otelcol-rerank          our Collector distribution (collector/distribution/)
#   jaeger                  Jaeger v2 (collector/jaeger/)
#   prometheus, promtool    Prometheus 3 (collector/prometheus/)
#   amtool                  Alertmanager's config checker (its server embeds a web UI that
#                           its Go module does not ship, so it does not build from the proxy)
# into .backend/bin/ (gitignored). Each binary is also cached outside the repository, under
# ${XDG_CACHE_HOME:-~/.cache}/otel-rerank/backend/<name>-<key>, where the key hashes the Go
# version, the module's go.mod/go.sum/*.go and the build flags: a fresh clone on the same
# machine (CI) copies them in seconds. Prints where the binaries are; exits 1 with one line
# when Go or the module proxy is missing.
#
# Usage: scripts/build-backend.sh [NAME...]   (default: all of them)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin_dir="${OTEL_RERANK_BACKEND_BIN:-$root/.backend/bin}"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/otel-rerank/backend"
ldflags='-s -w'

# name  module-dir  package  build-tags ("-" for none). remove_all_sd leaves out Prometheus'
# cloud service discoveries (the tests and compose use static_configs only): a much smaller
# build.
targets=(
    "otelcol-rerank collector/distribution . -"
    "jaeger collector/jaeger github.com/jaegertracing/jaeger/cmd/jaeger -"
    "prometheus collector/prometheus github.com/prometheus/prometheus/cmd/prometheus remove_all_sd"
    "promtool collector/prometheus github.com/prometheus/prometheus/cmd/promtool remove_all_sd"
    "amtool collector/prometheus github.com/prometheus/alertmanager/cmd/amtool -"
)

if ! command -v go >/dev/null 2>&1; then
    echo "build-backend: 'go' is not on PATH; install Go 1.26 (the live back-end tests need it)" >&2
    exit 1
fi

wanted=("$@")
mkdir -p "$bin_dir" "$cache_root"
go_version=$(go env GOVERSION)
start=$(date +%s)

key_of() {  # module dir, package, tags -> a short hash of what the binary is built from
    local dir=$1 package=$2 tags=$3
    {
        echo "$go_version $package $tags $ldflags"
        cat "$root/$dir/go.mod" "$root/$dir/go.sum"
        find "$root/$dir" -maxdepth 1 -name '*.go' -print0 | sort -z | xargs -0r cat
    } | sha256sum | cut -c1-16
}

for target in "${targets[@]}"; do
    read -r name dir package tags <<<"$target"
    [ "$tags" = - ] && tags=""
    if [ "${#wanted[@]}" -gt 0 ] && [[ " ${wanted[*]} " != *" $name "* ]]; then
        continue
    fi
    cached="$cache_root/$name-$(key_of "$dir" "$package" "$tags")/$name"
    if [ ! -x "$cached" ]; then
        t0=$(date +%s)
        echo "build-backend: building $name (first build of this version: minutes)" >&2
        mkdir -p "$(dirname "$cached")"
        if ! err=$(cd "$root/$dir" && go build -trimpath -tags="$tags" \
                -ldflags="$ldflags" -o "$cached.tmp" "$package" 2>&1); then
            fetch=$(printf '%s\n' "$err" | grep -m1 -E 'reading https?://|dial tcp|no such host|i/o timeout|GOPROXY|GOFLAGS=-mod=mod' || true)
            if [ -n "$fetch" ]; then
                echo "build-backend: the Go module proxy ($(go env GOPROXY)) did not serve" \
                     "what $dir needs: $(printf '%s' "$fetch" | sed 's/^[[:space:]]*//')" >&2
            else
                printf '%s\n' "$err" | tail -n 20 >&2
                echo "build-backend: building $name ($package in $dir) failed" >&2
            fi
            exit 1
        fi
        mv "$cached.tmp" "$cached"
        echo "build-backend: built $name in $(($(date +%s) - t0)) s" >&2
    fi
    if ! cmp -s "$cached" "$bin_dir/$name"; then
        cp "$cached" "$bin_dir/$name.tmp" && mv "$bin_dir/$name.tmp" "$bin_dir/$name"
    fi
    echo "backend: $name $bin_dir/$name"
done
echo "backend: binaries in $bin_dir ($(($(date +%s) - start)) s)"
