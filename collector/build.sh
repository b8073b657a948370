#!/usr/bin/env bash
# Builds (once) and prints the path of the binaries that the production configurations and the integration tests use:
#
#   collector/build.sh collector    the slim collector from collector/builder-config.yaml (with ocb)
#   collector/build.sh jaeger       Jaeger v2 from collector/jaeger/go.mod
#   collector/build.sh prometheus   Debian's prometheus (apt-get install, as root)
#   collector/build.sh all          all three
#
# Builds go to $OTELML_CACHE (default ~/.cache/otelml), keyed by a hash of their inputs, so a binary is rebuilt only
# when its manifest or checksums change. Go modules come through the Go module proxy; the checksums of every module
# are pinned in collector/builder-go.sum and collector/jaeger/go.sum, so no checksum database is consulted.
# Exit status 2 means "cannot be had on this machine" (no Go, or prometheus missing and not root); the tests skip
# then, or fail when CI=true.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${OTELML_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otelml}"
mkdir -p "$cache"

unavailable() {
	echo "$*" >&2
	exit 2
}

key() { cat "$@" | sha256sum | cut -c1-16; }

need_go() { command -v go >/dev/null || unavailable "go is not on PATH: cannot build $1 (install Go 1.25 or later)"; }

# Progress goes to stderr, a few lines a build: what is built, a line every $OTELML_PROGRESS_S seconds (default 300)
# while it runs, and how long it took; stdout carries only the binary's path.
progress_every="${OTELML_PROGRESS_S:-300}"
heartbeat=""

# Every $progress_every seconds, says that $1 is still being built; ends within a second of this script. It holds
# neither the lock nor stdout, so that nothing waits on it.
still_building() {
	exec 9>&- 1>&2
	local since=0
	while kill -0 $$ 2>/dev/null; do
		sleep 1
		since=$((since + 1))
		[ $((since % progress_every)) = 0 ] && echo "$1: still building ($((since / 60)) min so far)"
	done
}

# Runs "$2 $3..." to produce the binary at $1 unless it exists; one build at a time per cache.
build_once() {
	local out="$1" name
	name="$(basename "$out")"
	shift
	if [ ! -x "$out" ]; then
		exec 9>"$cache/build.lock"
		flock -n 9 || {
			echo "$name: waiting for another build in $cache to finish" >&2
			flock 9
		}
		if [ ! -x "$out" ]; then
			local started=$SECONDS
			echo "$name: not in the cache; building it with Go (the first build takes 20-40 minutes, then it is" \
				"cached under $cache)" >&2
			still_building "$name" &
			heartbeat=$!
			trap '[ -z "$heartbeat" ] || kill "$heartbeat" 2>/dev/null || true' EXIT
			"$@" >&2
			kill "$heartbeat" 2>/dev/null || true
			heartbeat=""
			echo "built $out in $((SECONDS - started)) s" >&2
		fi
		exec 9>&-
	fi
	echo "$out"
}

build_collector() {
	local out="$1" work version
	need_go "the collector"
	# The builder of the same release as the collector the manifest describes (dist.version).
	version="$(sed -n 's/^  version: //p' "$here/builder-config.yaml")"
	work="$(mktemp -d "$cache/collector.XXXXXX")"
	GOBIN="$cache/ocb-$version" go install "go.opentelemetry.io/collector/cmd/builder@v$version"
	sed 's|^  output_path: .*|  output_path: ./src|' "$here/builder-config.yaml" >"$work/builder-config.yaml"
	(cd "$work" && "$cache/ocb-$version/builder" --config builder-config.yaml --skip-get-modules --skip-compilation)
	cp "$here/builder-go.sum" "$work/src/go.sum"
	(cd "$work/src" && GOFLAGS=-mod=mod go build -trimpath -ldflags=-s -o "$work/otelcol-otelml" .)
	mkdir -p "$(dirname "$out")"
	mv "$work/otelcol-otelml" "$out"
	rm -rf "$work"
}

build_jaeger() {
	local out="$1" work
	need_go "Jaeger"
	work="$(mktemp -d "$cache/jaeger.XXXXXX")"
	cp "$here/jaeger/go.mod" "$here/jaeger/go.sum" "$work/"
	(cd "$work" && go build -trimpath -ldflags=-s -o "$work/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger)
	mkdir -p "$(dirname "$out")"
	mv "$work/jaeger" "$out"
	rm -rf "$work"
}

collector() {
	local out
	out="$cache/otelcol-otelml-$(key "$here/builder-config.yaml" "$here/builder-go.sum")/otelcol-otelml"
	build_once "$out" build_collector "$out"
}

jaeger() {
	local version out
	version="$(sed -n 's|^\tgithub.com/jaegertracing/jaeger \(v[^ ]*\).*|\1|p' "$here/jaeger/go.mod")"
	out="$cache/jaeger-$version-$(key "$here/jaeger/go.mod" "$here/jaeger/go.sum")/jaeger"
	build_once "$out" build_jaeger "$out"
}

prometheus() {
	if ! type -P prometheus >/dev/null; then
		[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null ||
			unavailable "prometheus is not installed and this is not root with apt-get: apt-get install prometheus"
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } >&2
	fi
	type -P prometheus
}

case "${1:-}" in
collector | jaeger | prometheus) "$1" ;;
all)
	status=0
	for name in collector jaeger prometheus; do
		"$0" "$name" || status=$((status > $? ? status : $?))
	done
	exit "$status"
	;;
*)
	echo "usage: $0 collector|jaeger|prometheus|all" >&2
	exit 64
	;;
esac
