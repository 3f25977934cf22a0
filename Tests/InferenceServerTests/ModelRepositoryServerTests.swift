import Foundation
import Glibc
import Synchronization
import TestSupport
import Testing

/// A model repository laid out from the catalog: each model's folder holds its manifest, with
/// its ONNX file and labels linked.
struct CatalogRepository {
    let directory: URL

    init(_ models: [String]) throws {
        directory = try Fixtures.temporaryDirectory()
        for name in models { try add(name) }
    }

    /// `name`'s folder with the catalog's manifest, or `as` another name at `version`.
    func add(_ name: String, as folderName: String? = nil, version: Int? = nil) throws {
        let folder = directory.appendingPathComponent(folderName ?? name)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: TestPaths.models.appendingPathComponent("\(name).json"))) as! [String: Any]
        let file = manifest["file"] as! String
        if let version {
            let versionFolder = folder.appendingPathComponent(String(version))
            try FileManager.default.createDirectory(at: versionFolder, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(at: versionFolder.appendingPathComponent("model.onnx"), withDestinationURL: TestPaths.models.appendingPathComponent(file))
            return
        }
        try JSONSerialization.data(withJSONObject: manifest).write(to: folder.appendingPathComponent("\(name).json"))
        for key in ["file", "labels"] {
            guard let linked = manifest[key] as? String else { continue }
            try FileManager.default.createSymbolicLink(at: folder.appendingPathComponent(linked), withDestinationURL: TestPaths.models.appendingPathComponent(linked))
        }
    }

    /// A folder that cannot be served: its config.json has a key of the wrong type.
    func addBroken(_ name: String) throws {
        try add("tiny", as: name)
        try Data(#"{"workers": "many"}"#.utf8).write(to: directory.appendingPathComponent("\(name)/config.json"))
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

/// Several models, one server: a repository's models on pools of their own, the CPUs divided,
/// models unloaded under load and loaded again, new versions picked up, a broken one reported.
@Suite(.serialized) struct ModelRepositoryServerTests {
    static let realModels = ["efficientnet-lite0", "efficientnet-lite0-int8"]

    static func index(_ server: ServerHarness) throws -> [[String: Any]] {
        let reply = try server.request("POST", "/v2/repository/index")
        return (try? JSONSerialization.jsonObject(with: reply.body) as? [[String: Any]]) ?? []
    }

    /// The model a worker runs, from the configuration on its command line.
    static func model(ofWorker pid: Int32) -> String? {
        let command = String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data(), as: UTF8.self)
        return (realModels + ["tiny"]).first { command.contains("\($0).onnx") }
    }

    @Test func threeModelsShareTwoCPUsAndOneIsUnloadedUnderLoadAndLoadedAgain() async throws {
        let repository = try CatalogRepository(Self.realModels + ["tiny"])
        defer { repository.remove() }
        try repository.addBroken("broken")
        let server = try ServerHarness(
            ["--model-repository", repository.directory.path, "--model-control", "explicit", "--load-model", "*"], pool: [])
        defer { server.stop() }

        // The broken one is reported with its reason; the three serve.
        let index = try Self.index(server)
        #expect(Set(index.filter { $0["state"] as? String == "READY" }.compactMap { $0["name"] as? String }) == Set(Self.realModels + ["tiny"]))
        let broken = try #require(index.first { $0["name"] as? String == "broken" })
        #expect(broken["state"] as? String == "UNAVAILABLE" && (broken["reason"] as? String)?.contains("\"workers\"") == true, "\(broken)")
        let cat = try Fixtures.sample("chelsea.png")
        for model in Self.realModels {
            let reply = try server.request("POST", "/v1/models/\(model)/classify", body: cat)
            let top = ((reply.json?["top"] as? [[String: Any]])?.first?["class_index"] as? NSNumber)?.intValue ?? -1
            #expect(reply.status == 200 && catClasses.contains(top), "\(model): \(reply.status) \(top)")
            #expect(reply.json?["version"] as? String == "1")
        }
        #expect(try server.request("POST", "/v1/models/tiny/classify", body: cat).status == 200)

        // The split the log prints is the one the workers run on.
        let log = server.logText
        for worker in server.workers {
            let model = try #require(Self.model(ofWorker: worker), "worker \(worker) runs one of the three")
            let line = try #require(log.split(separator: "\n").first { $0.contains("loaded \(model) version 1") }, "\(log)")
            #expect(line.contains("on CPUs [\(allowedCPUs(worker))]"), "worker \(worker) of \(model) runs on \(allowedCPUs(worker)): \(line)")
        }
        #expect(server.workers.count == 3 && log.contains("CPUs now: CPU 0: "), "\(log)")

        // Unload one while all three are under load: its requests are refused (503 while it
        // drains, 404 after), the others' all succeed.
        let statuses = Mutex<[String: [Int]]>([:])
        let running = Atomic(true)
        let clients = (Self.realModels + ["tiny"]).map { model in
            Thread {
                while running.load(ordering: .relaxed) {
                    let status = (try? server.request("POST", "/v1/models/\(model)/classify", body: cat).status) ?? 0
                    statuses.withLock { $0[model, default: []].append(status) }
                }
            }
        }
        clients.forEach { $0.start() }
        func answered(_ model: String) -> Int { statuses.withLock { $0[model]?.count ?? 0 } }
        #expect(await eventually(within: 60) { (Self.realModels + ["tiny"]).allSatisfy { answered($0) >= 5 } })
        let unloaded = Self.realModels[1]
        #expect(try server.request("POST", "/v2/repository/models/\(unloaded)/unload").status == 200)
        let refusedFrom = answered(unloaded)
        #expect(await eventually(within: 60) { answered(unloaded) >= refusedFrom + 5 && answered("tiny") >= 20 })
        running.store(false, ordering: .relaxed)
        #expect(await eventually(within: 60) { clients.allSatisfy(\.isFinished) })
        let seen = statuses.withLock { $0 }
        for model in [Self.realModels[0], "tiny"] {
            #expect(seen[model, default: []].allSatisfy { $0 == 200 }, "\(model) lost requests: \(Dictionary(grouping: seen[model, default: []]) { $0 }.mapValues(\.count))")
        }
        let after = seen[unloaded, default: []].dropFirst(refusedFrom)
        #expect(!after.isEmpty && after.allSatisfy { $0 == 404 || $0 == 503 }, "\(Dictionary(grouping: after) { $0 }.mapValues(\.count))")
        let refusal = try server.request("POST", "/v1/models/\(unloaded)/classify", body: cat)
        #expect(refusal.status == 404 && (refusal.json?["error"] as? String)?.contains("unloaded") == true)
        #expect(try server.request("GET", "/v2/models/\(unloaded)/ready").status == 503)

        // Loaded again, it is ready and answers.
        #expect(try server.request("POST", "/v2/repository/models/\(unloaded)/load").status == 200)
        #expect(try server.request("GET", "/v2/models/\(unloaded)/ready").status == 200)
        #expect(try server.request("POST", "/v1/models/\(unloaded)/classify", body: cat).status == 200)
        #expect(try server.request("GET", "/v2/health/ready").status == 200)
    }

    @Test func underPollANewVersionIsServedAndTheOldOneDrained() async throws {
        let repository = try CatalogRepository([])
        defer { repository.remove() }
        try repository.add("tiny", version: 1)
        let server = try ServerHarness(
            ["--model-repository", repository.directory.path, "--model-control", "poll", "--repository-poll-secs", "0.2"], pool: [])
        defer { server.stop() }
        let tensor = Data(count: 3 * 224 * 224 * 4)
        let (body, headers) = try binaryBody(
            ["inputs": [["name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32", "parameters": ["binary_data_size": tensor.count]]]], tensor)
        #expect(try server.request("POST", "/v2/models/tiny/infer", body: body, headers: headers).json?["model_version"] as? String == "1")
        try repository.add("tiny", version: 2)
        #expect(await eventually(within: 60) {
            let versions = ((try? Self.index(server)) ?? []).filter { $0["name"] as? String == "tiny" }
            return versions.count == 1 && versions[0]["version"] as? String == "2" && versions[0]["state"] as? String == "READY"
        }, "\((try? Self.index(server)) ?? [])")
        #expect(try server.request("POST", "/v2/models/tiny/infer", body: body, headers: headers).json?["model_version"] as? String == "2")
        #expect(try server.request("GET", "/v2/models/tiny").json?["versions"] as? [String] == ["2"])
        #expect(server.logText.contains("unloaded tiny version 1"))
    }
}
