#!/usr/bin/env bash
# Regenerates the Swift code for the KServe v2 gRPC protocol
# (Sources/KServeGRPC/Protos/inference.proto → Sources/KServeGRPC/Generated/).
#
#   tools/generate_grpc.sh
#
# The generated files are committed, so building visionpool needs neither protoc nor the
# code generators (swift-protobuf's plugin alone takes ~10 minutes to build on 2 CPUs).
# This script builds both generators at the versions Package.swift uses, in .build-protoc/,
# and runs Debian's protoc (protobuf-compiler) with them.
set -euo pipefail
cd "$(dirname "$0")/.."

protobuf_version=1.39.0 grpc_protobuf_version=2.4.1
command -v protoc >/dev/null || {
    echo "protoc is missing: apt-get install protobuf-compiler" >&2
    exit 1
}
scratch=.build-protoc
mkdir -p "$scratch/Sources/Generators"
cat >"$scratch/Package.swift" <<SWIFT
// swift-tools-version:6.0
// Made by tools/generate_grpc.sh to build the code generators; not part of visionpool.
import PackageDescription
let package = Package(
    name: "generators",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", exact: "$protobuf_version"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", exact: "$grpc_protobuf_version"),
    ],
    targets: [.target(name: "Generators")]
)
SWIFT
echo "// The package needs one target of its own." >"$scratch/Sources/Generators/Empty.swift"
swift build --package-path "$scratch" -c release --product protoc-gen-swift
swift build --package-path "$scratch" -c release --product protoc-gen-grpc-swift-2
bin=$(swift build --package-path "$scratch" -c release --show-bin-path)

out=Sources/KServeGRPC/Generated
rm -f "$out"/*.swift
protoc --proto_path=Sources/KServeGRPC/Protos \
    --plugin=protoc-gen-swift="$bin/protoc-gen-swift" --swift_out="$out" --swift_opt=Visibility=Public \
    --plugin=protoc-gen-grpc-swift-2="$bin/protoc-gen-grpc-swift-2" --grpc-swift-2_out="$out" \
    --grpc-swift-2_opt=Visibility=Public,Server=true,Client=true \
    inference.proto
echo "generated with protoc $(protoc --version | cut -d' ' -f2), swift-protobuf $protobuf_version, grpc-swift-protobuf $grpc_protobuf_version:"
ls -l "$out"
