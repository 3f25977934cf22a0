/// Which kernels an engine chose for a model's convolutions and fully connected layers: by
/// precision, the proof that an int8 model runs int8 rather than dequantized to the engine's
/// float precision; by instruction-set family, the proof of which CPU's kernels ran (what
/// `ONEDNN_MAX_CPU_ISA` caps). OpenVINO reports it from its performance counters, ONNX
/// Runtime (precisions only) from its profiler.
public struct KernelCensus: Sendable, Equatable, Codable, CustomStringConvertible {
    public var int8 = 0, bf16 = 0, f16 = 0, f32 = 0, other = 0
    /// Layers by the instruction-set family their kernel's name gives: "amx", "avx512", "avx2",
    /// "sse41", "mlas" (OpenVINO's own GEMM, which picks its instructions itself) or "unnamed".
    /// Families that ran nothing are left out; empty where the engine does not say.
    public var instructionSets: [String: Int] = [:]

    public init(int8: Int = 0, bf16: Int = 0, f16: Int = 0, f32: Int = 0, other: Int = 0, instructionSets: [String: Int] = [:]) {
        (self.int8, self.bf16, self.f16, self.f32, self.other) = (int8, bf16, f16, f32, other)
        self.instructionSets = instructionSets.filter { $0.value > 0 }
    }

    public var total: Int { int8 + bf16 + f16 + f32 + other }

    /// e.g. "int8 32, f32 18 (avx2 49, mlas 1)".
    public var description: String {
        let precisions = [("int8", int8), ("bf16", bf16), ("f16", f16), ("f32", f32), ("other", other)]
            .filter { $0.1 > 0 }.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
        let families = Self.familyOrder.compactMap { family in instructionSets[family].map { "\(family) \($0)" } }
        return families.isEmpty ? precisions : "\(precisions) (\(families.joined(separator: ", ")))"
    }

    /// The families, most capable first.
    public static let familyOrder = ["amx", "avx512", "avx2", "sse41", "mlas", "unnamed"]
}
