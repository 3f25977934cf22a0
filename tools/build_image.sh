#!/usr/bin/env bash
# Builds visionpool's container image without a container engine: a Debian 12 root file
# system made by mmdebstrap with only the libraries the binaries load, the release binaries,
# the Swift runtime, OpenVINO's CPU plugin, ONNX Runtime and the default model, packed by
# umoci as an OCI image layout. It runs as uid 65532 with `visionpool serve` on port 8080.
#
#   tools/build_image.sh [--output DIR] [--tag TAG] [--run]
#
# DIR (default build/image) receives oci/ (the layout: push it with
# `skopeo copy oci:DIR/oci:TAG docker://REGISTRY/visionpool:TAG`, or `podman load`), the
# root file system's tar, and contents.txt (packages, files, sizes). --run then unpacks the
# image and starts it in a private mount and PID namespace (unshare + chroot, as its user),
# and classifies a sample through its port 8080: a check that the image works, without an
# engine. Needs root (or sudo) for apt, mmdebstrap and the unpacked image's file owners.
set -euo pipefail
cd "$(dirname "$0")/.."

output=build/image tag=latest run=false
while (($#)); do
    case $1 in
        --output) output=$2; shift 2 ;;
        --tag) tag=$2; shift 2 ;;
        --run) run=true; shift ;;
        -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

step() { printf '\n== %s\n' "$*"; }
fail() { echo "build_image: $*" >&2; exit 1; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

step "tools: mmdebstrap and umoci"
for tool in mmdebstrap umoci; do
    command -v $tool >/dev/null || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $tool >/dev/null
done
[[ -x .venv/openvino/libs/libopenvino_c.so.2641 || -e .venv/openvino/libs/libopenvino_c.so.2641 ]] || fail "run tools/setup.sh first: .venv/openvino is missing"
[[ -e Models/efficientnet-lite0.onnx ]] || fail "run tools/setup.sh first: Models/efficientnet-lite0.onnx is missing"

step "release build"
source tools/build_flags.sh
swift build "${build_flags[@]}" 2>&1 | tail -1
bin=$(swift build "${build_flags[@]}" --show-bin-path)

stage=$output/stage
rm -rf "$stage" && mkdir -p "$stage/opt/visionpool/bin" "$stage/opt/visionpool/lib" "$stage/opt/visionpool/Models"
prefix=$stage/opt/visionpool
cp "$bin/visionpool" "$bin/visionpool-worker" "$prefix/bin/"
strip --strip-unneeded "$prefix/bin/visionpool" "$prefix/bin/visionpool-worker"

# OpenVINO as the CPU needs it: the runtime, its C API, the CPU plugin, the ONNX reader and
# TBB; not the GPU/NPU plugins or the other frameworks' readers.
openvino=.venv/openvino/libs
for library in libopenvino.so.2641 libopenvino_c.so.2641 libopenvino_intel_cpu_plugin.so libopenvino_auto_plugin.so \
    libopenvino_onnx_frontend.so.2641 libopenvino_ir_frontend.so.2641 libtbb.so.12 libtbbmalloc.so.2 libtbbbind_2_5.so.3 libhwloc.so.15; do
    cp -L "$openvino/$library" "$prefix/lib/"
done
cp -L .venv/onnxruntime/libonnxruntime.so.1.31.1 "$prefix/lib/"
cp Models/efficientnet-lite0.json Models/efficientnet-lite0.onnx Models/imagenet-labels.txt "$prefix/Models/"

# The Swift runtime comes from the toolchain; every other library the binaries and plugins
# load comes from the Debian package that ships it, so the image gets Debian's security updates.
packages=()
swift_runtime=$(readlink -f "$(dirname "$(readlink -f "$(command -v swift)")")/../lib/swift/linux")
for file in "$prefix/bin/"* "$prefix/lib/"*.so*; do
    while read -r path; do
        case $path in
            "$swift_runtime"/*) [[ -e $prefix/lib/$(basename "$path") ]] || cp -L "$path" "$prefix/lib/" ;;
            /lib/* | /usr/lib/*)
                package=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null || dpkg -S "$path" 2>/dev/null) || fail "no Debian package ships $path"
                packages+=("${package%%:*}") ;;
        esac
    done < <(LD_LIBRARY_PATH=$prefix/lib ldd "$file" | awk '$3 ~ /^\// { print $3 }')
done
mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)
echo "Debian packages for the libraries: ${packages[*]}"

step "root file system (mmdebstrap, Debian 12)"
rootfs=$output/rootfs.tar
# Essential packages plus the libraries' packages; no documentation, manuals or locales;
# the unprivileged user; apt's lists and caches removed.
mmdebstrap --variant=essential --include="$(IFS=,; echo "${packages[*]}")" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='echo "visionpool:x:65532:65532:visionpool:/tmp:/usr/sbin/nologin" >> "$1/etc/passwd"' \
    --customize-hook='echo "visionpool:x:65532:" >> "$1/etc/group"' \
    --customize-hook="copy-in $stage/opt /" \
    --customize-hook='rm -rf "$1/var/lib/apt/lists/"* "$1/var/cache/apt/"* "$1/var/log/"*' \
    bookworm "$rootfs" >"$output/mmdebstrap.log" 2>&1 || { tail -20 "$output/mmdebstrap.log"; fail "mmdebstrap failed (log: $output/mmdebstrap.log)"; }

step "OCI image layout (umoci)"
layout=$output/oci
rm -rf "$layout"
umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci raw add-layer --image "$layout:$tag" "$rootfs"
umoci config --image "$layout:$tag" \
    --config.user 65532:65532 --config.workingdir /tmp \
    --config.entrypoint /opt/visionpool/bin/visionpool \
    --config.cmd serve --config.cmd --http-port --config.cmd 8080 \
    --config.cmd --shutdown-delay --config.cmd 5 --config.cmd --graceful-timeout --config.cmd 25 --config.cmd --log-format --config.cmd json \
    --config.env PATH=/opt/visionpool/bin:/usr/bin:/bin \
    --config.env LD_LIBRARY_PATH=/opt/visionpool/lib \
    --config.env VISIONPOOL_ONNXRUNTIME_LIBRARY=/opt/visionpool/lib/libonnxruntime.so.1.31.1 \
    --config.env XDG_CACHE_HOME=/tmp/cache \
    --config.exposedports 8080/tcp \
    --config.label org.opencontainers.image.title=visionpool \
    --config.label org.opencontainers.image.description="Image classification over the KServe v2 protocol" \
    --history.created_by "tools/build_image.sh"
umoci gc --layout "$layout"

step "contents"
{
    echo "image $layout:$tag"
    echo "layer (compressed): $(du -b "$layout/blobs/sha256/"* | sort -n | tail -1 | awk '{ printf "%.1f MB", $1 / 1e6 }')"
    echo "root file system (uncompressed tar): $(du -b "$rootfs" | awk '{ printf "%.1f MB", $1 / 1e6 }')"
    echo
    echo "/opt/visionpool:"
    (cd "$stage/opt/visionpool" && find . -type f -printf '%s %p\n' | sort -k2 | awk '{ printf "  %8.1f MB  %s\n", $1 / 1e6, $2 }')
    echo
    echo "Debian packages (${#packages[@]} for the libraries, plus Essential and their dependencies):"
    tar -xOf "$rootfs" ./var/lib/dpkg/status | awk '/^Package:/ { p = $2 } /^Installed-Size:/ { printf "  %-40s %6d kB\n", p, $2 }' | sort
} >"$output/contents.txt"
head -3 "$output/contents.txt" | tail -2
echo "contents: $output/contents.txt"

if $run; then
    step "run: the unpacked image in its own mount and PID namespaces, as uid 65532"
    bundle=$output/bundle
    as_root rm -rf "$bundle"
    as_root umoci unpack --image "$layout:$tag" "$bundle" >/dev/null
    # The image's own configuration, read back from the bundle, is what runs.
    mapfile -t command < <(python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["process"]; print("\n".join(p["args"]))' "$bundle/config.json")
    mapfile -t environment < <(python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["process"]["env"]))' "$bundle/config.json")
    log=$output/run.log
    curl -s -o /dev/null http://127.0.0.1:8080/ && fail "something already listens on port 8080, which the image's server needs"
    launcher=(unshare --mount --pid --fork --kill-child=SIGTERM)
    [[ $(id -u) -eq 0 ]] || launcher=(sudo "${launcher[@]}")
    "${launcher[@]}" sh -c 'mount -t proc proc "$0/proc" && mount --rbind /sys "$0/sys" && mount -t tmpfs -o mode=1777 tmpfs "$0/tmp" && exec chroot --userspec=65532:65532 "$@"' \
        "$bundle/rootfs" "$bundle/rootfs" /usr/bin/env -i "${environment[@]}" "${command[@]}" >"$log" 2>&1 &
    runner=$!
    ready=false
    for _ in $(seq 120); do
        if curl -sf http://127.0.0.1:8080/v2/health/ready >/dev/null; then ready=true; break; fi
        kill -0 $runner 2>/dev/null || break
        sleep 0.5
    done
    if $ready; then
        curl -s -X POST --data-binary @Models/samples/chelsea.png -H 'Content-Type: application/octet-stream' http://127.0.0.1:8080/v1/classify
        echo
    else
        echo "the image's server did not become ready; its log:"; cat "$log"
    fi
    # The server is unshare's child (PID 1 in its namespace): SIGTERM it and wait until it has
    # drained and exited, which takes its --shutdown-delay.
    server=$(pgrep -P "$(pgrep -P $runner -x unshare || echo $runner)" | head -1)
    [[ -n $server ]] && { as_root kill -TERM "$server"; while as_root kill -0 "$server" 2>/dev/null; do sleep 0.2; done; }
    wait $runner 2>/dev/null || true
    $ready || fail "the image did not serve"
    echo "server log: $log"
fi
