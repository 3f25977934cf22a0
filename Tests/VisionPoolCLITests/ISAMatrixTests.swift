import Foundation
import TestSupport
import Testing

/// The x86 instruction-set levels OpenVINO's kernels can be capped to (`ONEDNN_MAX_CPU_ISA`),
/// least capable first, with the CPU flags a machine needs to run each natively.
enum ISALevel: String, CaseIterable, Comparable {
    case avx2 = "AVX2"
    case avx512Core = "AVX512_CORE"
    case avx512CoreVNNI = "AVX512_CORE_VNNI"
    case avx512CoreBF16 = "AVX512_CORE_BF16"
    case avx512CoreAMX = "AVX512_CORE_AMX"

    var requiredFlags: [String] {
        switch self {
        case .avx2: ["avx2"]
        case .avx512Core: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]
        case .avx512CoreVNNI: ISALevel.avx512Core.requiredFlags + ["avx512_vnni"]
        case .avx512CoreBF16: ISALevel.avx512CoreVNNI.requiredFlags + ["avx512_bf16"]
        case .avx512CoreAMX: ISALevel.avx512CoreBF16.requiredFlags + ["amx_tile", "amx_bf16", "amx_int8"]
        }
    }

    /// The precision OpenVINO picks on a real CPU of this level. Under a cap it reads the real
    /// CPU and picks bf16 where that has it, emulating bf16 on AVX512_CORE kernels (and failing on
    /// AVX2 ones, which the fallback mends): the rows below AVX512_CORE_BF16 ask for f32, as such
    /// a CPU would choose, except AVX2, whose row checks that the fallback reaches f32 by itself.
    var precision: String? {
        switch self {
        case .avx512Core, .avx512CoreVNNI: "f32"
        case .avx2, .avx512CoreBF16, .avx512CoreAMX: nil
        }
    }

    /// Kernel families (`KernelCensus.instructionSets`) that must not run under this cap.
    var forbiddenFamilies: [String] {
        switch self {
        case .avx2: ["avx512", "amx"]
        case .avx512Core, .avx512CoreVNNI, .avx512CoreBF16: ["amx"]
        case .avx512CoreAMX: []
        }
    }

    static func < (a: ISALevel, b: ISALevel) -> Bool { allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)! }

    /// This machine's flags, from /proc/cpuinfo.
    static let machineFlags: Set<String> = {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let line = info.split(separator: "\n").first { $0.hasPrefix("flags") } ?? ""
        return Set(line.split(separator: " ").map(String.init))
    }()

    var runsHere: Bool { requiredFlags.allSatisfy(Self.machineFlags.contains) }
}

/// Photos of the bundled samples with the ImageNet classes a real model must give them.
let photoClasses: [(photo: String, classes: Set<Int>)] = [
    ("chelsea.png", Set(catClasses)), ("coffee.png", coffeeClasses), ("motorcycle_left.png", [665, 670]), ("rocket.jpg", [657, 744, 812]),
]

/// Every catalog model, f32 and int8, on OpenVINO under every x86 ISA level this machine can
/// emulate, through the real worker pool: each runs at the precision a CPU of that level runs
/// (under the AVX2 cap the precision fallback must get there by itself), on kernels no newer
/// than the level, int8 models on int8 kernels; and the real models classify the sample photos
/// right. ONNX Runtime has no such cap: its row runs on this CPU as it is.
@Suite(.serialized) struct ISAMatrixTests {
    /// `visionpool models --check --json` under `environment`: each model's check on `engine`.
    func checks(engine: String, precision: [String], environment: [String: String]) throws -> [(model: String, check: [String: Any])] {
        let run = try visionpool(["models", "--check", "--engine", engine, "--json"] + precision, environment: environment)
        #expect(run.status == 0, "\(run.stderr)")
        return run.jsonLines.compactMap { line in
            guard let name = line["name"] as? String, line["installed"] as? Bool == true,
                  let check = (line["check"] as? [[String: Any]])?.first else { return nil }
            return (name, check)
        }
    }

    /// Each sample photo's top class from `classify` through the pool, and the summary line.
    func topClasses(model: String, engine: String, precision: [String], environment: [String: String]) throws -> (top: [String: Int], summary: String) {
        let run = try visionpool(
            ["classify", "--json", "--model", model, "--engine", engine] + precision + [TestPaths.samples.path], environment: environment)
        #expect(run.status == 0, "\(model) under \(environment): \(run.stderr)")
        var top: [String: Int] = [:]
        for line in run.jsonLines {
            if let path = line["path"] as? String, let index = topClass(line) { top[URL(fileURLWithPath: path).lastPathComponent] = index }
        }
        return (top, run.stderr)
    }

    /// Checks one row of the matrix and returns its lines for the table.
    func row(level: ISALevel?, engine: String) throws -> [String] {
        let environment = level.map { ["ONEDNN_MAX_CPU_ISA": $0.rawValue] } ?? [:]
        let precision = level?.precision.map { ["--precision", $0] } ?? []
        let label = "\(engine) \(level?.rawValue ?? "native") \(level?.precision ?? "default")"
        let models = try checks(engine: engine, precision: precision, environment: environment)
        #expect(models.count >= 6, "every installed catalog model is checked under \(label)")
        var lines: [String] = []
        for (model, check) in models {
            try #require(check["runs"] as? Bool == true, "\(model) under \(label): \(check["error"] ?? "")")
            let ran = check["precision"] as? String ?? "?"
            let kernels = check["kernels"] as? [String: Any] ?? [:]
            let count = { (key: String) in (kernels[key] as? NSNumber)?.intValue ?? 0 }
            let families = (kernels["instruction_sets"] as? [String: NSNumber] ?? [:]).mapValues(\.intValue)
            if model.hasSuffix("-int8") { #expect(count("int8") > 0, "\(model) under \(label) keeps its int8 kernels: \(kernels)") }
            if let level {
                for family in level.forbiddenFamilies {
                    #expect(families[family] == nil, "\(model) under \(label) ran \(family) kernels: \(families)")
                }
                if level < .avx512CoreBF16 {
                    #expect(count("bf16") == 0 && !ran.contains("bf16"), "\(model): a CPU of \(level.rawValue) runs no bf16, yet it ran \(ran) \(kernels)")
                }
            }
            let fallback = (check["fallback"] as? [String: Any]).map { "fell back from \($0["from"] ?? "?")" } ?? ""
            let familyText = families.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            var line = "\(label.padding(toLength: 30, withPad: " ", startingAt: 0)) \(model.padding(toLength: 24, withPad: " ", startingAt: 0)) "
                + "\(ran.padding(toLength: 10, withPad: " ", startingAt: 0)) \(fallback.padding(toLength: 20, withPad: " ", startingAt: 0)) "
                + (kernels.isEmpty ? "" : "int8 \(count("int8")) bf16 \(count("bf16")) f32 \(count("f32")) [\(familyText)]")
            if try Fixtures.catalog.entry(named: model).manifest.weights == .pretrained {
                let (top, summary) = try topClasses(model: model, engine: engine, precision: precision, environment: environment)
                let right = photoClasses.filter { top[$0.photo].map($0.classes.contains) ?? false }
                #expect(right.count == photoClasses.count, "\(model) under \(label): \(top)")
                if !fallback.isEmpty { #expect(summary.contains("could not run it"), "classify says why it fell back: \(summary)") }
                line += "  photos right \(right.count)/\(photoClasses.count)"
            }
            lines.append(line)
        }
        return lines
    }

    @Test func everyModelRunsAtEveryISALevelThisMachineCanEmulate() throws {
        let levels = ISALevel.allCases.filter(\.runsHere)
        let missing = ISALevel.allCases.filter { !$0.runsHere }
        try #require(levels.contains(.avx2), "visionpool needs at least AVX2")
        let flags = ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile"].filter(ISALevel.machineFlags.contains)
        var table = ["ISA matrix on a CPU with \(flags.joined(separator: " "))"]
        for level in levels { table += try row(level: level, engine: "openvino") }
        table += try row(level: nil, engine: "onnxruntime")
        if !missing.isEmpty {
            table.append("not run here (this CPU lacks them): \(missing.map { "\($0.rawValue) (\($0.requiredFlags.filter { !ISALevel.machineFlags.contains($0) }.joined(separator: " ")))" }.joined(separator: ", "))")
        }
        print(table.joined(separator: "\n"))
    }
}
