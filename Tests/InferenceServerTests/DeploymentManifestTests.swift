import Foundation
import TestSupport
import Testing

/// The manifests in deploy/ (KServe runtime and InferenceService, plain Deployment, Service and
/// HPA), checked offline by tools/check_manifests.py: the shipped ones pass, broken copies fail
/// naming what is wrong, and every server command line in them is one the real binary takes.
@Suite struct DeploymentManifestTests {
    static let deploy = TestPaths.root.appendingPathComponent("deploy")
    static let checker = TestPaths.root.appendingPathComponent("tools/check_manifests.py")
    static let python = TestPaths.root.appendingPathComponent(".venv/bin/python")

    /// The manifests that run the server.
    static let serverManifests = ["kserve/cluster-serving-runtime.yaml", "kubernetes/deployment.yaml"]

    /// tools/check_manifests.py with `arguments`, run to its exit.
    static func check(_ arguments: [String]) throws -> Run {
        try visionpool([checker.path] + arguments, executable: python, timeout: 120)
    }

    /// A copy of deploy/ in a fresh folder, removed by the caller.
    static func copyOfDeploy() throws -> URL {
        let folder = try Fixtures.temporaryDirectory()
        try FileManager.default.copyItem(at: deploy, to: folder.appendingPathComponent("deploy"))
        return folder
    }

    /// The shipped manifests pass: against the newest Kubernetes schemas kubernetes-validate
    /// bundles (the default) and against an older cluster's.
    @Test(arguments: [[], ["--kubernetes-version", "1.29"]])
    func theShippedManifestsPass(versionArguments: [String]) throws {
        let run = try Self.check(versionArguments)
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.hasPrefix("OK: "), "\(run.stdout)")
        #expect(run.stdout.contains("6 objects in 6 files"), "every manifest was read: \(run.stdout)")
    }

    /// One mistake written into a copy of a manifest, and what the checker must say about it.
    struct Breakage: Sendable, CustomTestStringConvertible {
        let file: String
        let replacing: String
        let with: String
        let message: String
        let testDescription: String

        init(_ description: String, _ file: String, replacing: String, with: String, message: String) {
            self.testDescription = description
            self.file = file
            self.replacing = replacing
            self.with = with
            self.message = message
        }
    }

    static let runtime = "kserve/cluster-serving-runtime.yaml"
    static let service = "kserve/inference-service.yaml"
    static let deployment = "kubernetes/deployment.yaml"

    static let breakages: [Breakage] = [
        Breakage(
            "cpu request below the limit", runtime, replacing: "requests:\n          cpu: \"2\"", with: "requests:\n          cpu: \"1\"",
            message: "cpu request '1' differs from its limit '2'"),
        Breakage(
            "fractional cpu", service, replacing: "cpu: \"4\"", with: "cpu: 3500m", message: "cpu request '3500m' is not a whole number of CPUs"),
        Breakage(
            "memory request below the limit", deployment, replacing: "requests:\n              cpu: \"2\"\n              memory: 2Gi",
            with: "requests:\n              cpu: \"2\"\n              memory: 1Gi", message: "memory request '1Gi' differs from its limit '2Gi'"),
        Breakage(
            "container not named kserve-container", runtime, replacing: "- name: kserve-container", with: "- name: visionpool",
            message: "container 'visionpool' must be named kserve-container"),
        Breakage(
            "misspelt core field in a Deployment", deployment, replacing: "readinessProbe:", with: "readinessProbes:",
            message: "'readinessProbes' was unexpected"),
        Breakage(
            "misspelt core field in the runtime's container", runtime, replacing: "livenessProbe:", with: "livenesProbe:",
            message: "'livenesProbe' was unexpected"),
        Breakage(
            "misspelt pod field in the InferenceService", service, replacing: "terminationGracePeriodSeconds: 30", with: "terminationGracePeriod: 30",
            message: "'terminationGracePeriod' was unexpected"),
        Breakage(
            "graceful timeout not under the grace period (runtime)", runtime, replacing: "--graceful-timeout=25", with: "--graceful-timeout=30",
            message: "--graceful-timeout 30 must be less than the pod's terminationGracePeriodSeconds 30"),
        Breakage(
            "graceful timeout not under the grace period (Deployment)", deployment, replacing: "- --graceful-timeout\n            - \"25\"",
            with: "- --graceful-timeout\n            - \"45\"", message: "--graceful-timeout 45 must be less than the pod's terminationGracePeriodSeconds 30"),
        Breakage(
            "shutdown delay as long as the graceful timeout", runtime, replacing: "--shutdown-delay=5", with: "--shutdown-delay=25",
            message: "--shutdown-delay 25 must be less than --graceful-timeout 25"),
        Breakage(
            "runtime without the v2 protocol", runtime, replacing: "protocolVersions:\n    - v2", with: "protocolVersions:\n    - v1",
            message: "spec.protocolVersions must include v2"),
        Breakage(
            "not RawDeployment", service, replacing: "deploymentMode: RawDeployment", with: "deploymentMode: Serverless",
            message: "serving.kserve.io/deploymentMode must be RawDeployment"),
        Breakage(
            "another runtime", service, replacing: "runtime: visionpool", with: "runtime: kserve-ovms",
            message: "spec.predictor.model.runtime must be visionpool"),
        Breakage(
            "probe on the wrong endpoint", runtime, replacing: "path: /v2/health/live", with: "path: /v2/health/ready",
            message: "livenessProbe checks '/v2/health/ready', should be /v2/health/live"),
        Breakage(
            "privilege escalation allowed", deployment, replacing: "allowPrivilegeEscalation: false", with: "allowPrivilegeEscalation: true",
            message: "allowPrivilegeEscalation must be false"),
        Breakage(
            "socket in the root of the /tmp emptyDir", runtime, replacing: "- --cache-dir=/tmp/cache",
            with: "- --cache-dir=/tmp/cache\n        - --socket=/tmp/visionpool.sock", message: "sits in the root of an emptyDir"),
        Breakage(
            "Service targeting no container port", "kubernetes/service.yaml", replacing: "targetPort: http", with: "targetPort: metrics",
            message: "targets 'metrics', not a container port"),
    ]

    /// Each broken copy fails, and the checker names the file and the problem.
    @Test(arguments: breakages)
    func aBrokenManifestFails(_ breakage: Breakage) throws {
        let folder = try Self.copyOfDeploy()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("deploy").appendingPathComponent(breakage.file)
        let original = try String(contentsOf: file, encoding: .utf8)
        let range = try #require(original.range(of: breakage.replacing), "\(breakage.file) no longer contains \(breakage.replacing)")
        try original.replacingCharacters(in: range, with: breakage.with).write(to: file, atomically: true, encoding: .utf8)

        let run = try Self.check([folder.appendingPathComponent("deploy").path])
        #expect(run.status == 1, "\(run.stdout)\(run.stderr)")
        // Lines read `FILE: problem`, FILE as the checker found it under the folder it was given.
        let lines = run.stdout.split(separator: "\n").map(String.init)
        #expect(
            lines.contains { $0.contains("deploy/\(breakage.file): ") && $0.contains(breakage.message) },
            "expected a line …deploy/\(breakage.file): …\(breakage.message)…, got:\n\(run.stdout)\(run.stderr)")
    }

    /// A folder with no manifests, or a path that is not there, is a failure too, not a pass.
    @Test func nothingToCheckFails() throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let empty = try Self.check([folder.path])
        #expect(empty.status == 1 && empty.stdout.contains("no *.yaml manifests found"), "\(empty.stdout)\(empty.stderr)")
        let missing = try Self.check([folder.appendingPathComponent("absent").path])
        #expect(missing.status == 1 && missing.stdout.contains("no such file or folder"), "\(missing.stdout)\(missing.stderr)")
    }

    /// The server containers' command lines, as the checker reads them from a manifest.
    static func serverArguments(_ manifest: String) throws -> [[String]] {
        let run = try check(["--server-args", deploy.appendingPathComponent(manifest).path])
        try #require(run.status == 0, "\(run.stdout)\(run.stderr)")
        let entries = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [[String: Any]], "\(run.stdout)")
        return entries.compactMap { $0["args"] as? [String] }
    }

    /// Every flag a manifest passes is one `visionpool serve` has, and the real argument parser
    /// takes the values: `serve ARGS --help` parses ARGS (a bad number or enum value fails with
    /// exit status 64) before printing the help.
    @Test(arguments: serverManifests)
    func theServerArgumentsAreOnesTheBinaryTakes(manifest: String) throws {
        let help = try visionpool(["serve", "--help"], timeout: 60)
        #expect(help.status == 0, "\(help.stderr)")
        let helpText = help.stdout + help.stderr
        let commandLines = try Self.serverArguments(manifest)
        try #require(!commandLines.isEmpty, "\(manifest) runs no visionpool container")
        for arguments in commandLines {
            #expect(arguments.first == "serve", "\(arguments)")
            let flags = arguments.filter { $0.hasPrefix("-") }.map { String($0.split(separator: "=", maxSplits: 1)[0]) }
            #expect(flags.contains("--http-port"))
            for flag in flags {
                #expect(
                    helpText.contains("  \(flag) ") || helpText.contains("  \(flag)/") || helpText.contains("  \(flag)\n"),
                    "\(manifest) passes \(flag), which `visionpool serve --help` does not list")
            }
            // KServe substitutes {{.Name}} with the InferenceService's name before the server sees it.
            let substituted = arguments.dropFirst().map { $0.replacingOccurrences(of: "{{.Name}}", with: "resnet50") }
            let parsed = try visionpool(["serve"] + substituted + ["--help"], timeout: 60)
            #expect(parsed.status == 0 && !parsed.stderr.contains("Error:"), "\(manifest): \(parsed.stderr)")
        }
    }
}
