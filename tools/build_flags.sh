# The one build set-up, the test suite and the tools share, sourced by them: release, with
# this package's modules compiled for testing (Package.swift adds -enable-testing to them), so
# that `swift test` compiles only the test targets on top of set-up's build. A `swift build`
# with other flags rebuilds every module (minutes on 2 CPUs); what -enable-testing costs the
# shipped binaries is measured in docs/PERFORMANCE.md.
# shellcheck shell=bash
build_flags=(-c release)
