/// Which kernels an engine chose for a model's convolutions and fully connected layers: the
/// proof that an int8 model runs int8, not dequantized to the engine's float precision.
/// OpenVINO reports it from its performance counters, ONNX Runtime from its profiler.
public struct KernelCensus: Sendable, Equatable, CustomStringConvertible {
    public var int8 = 0, bf16 = 0, f16 = 0, f32 = 0, other = 0

    public init(int8: Int = 0, bf16: Int = 0, f16: Int = 0, f32: Int = 0, other: Int = 0) {
        (self.int8, self.bf16, self.f16, self.f32, self.other) = (int8, bf16, f16, f32, other)
    }

    public var total: Int { int8 + bf16 + f16 + f32 + other }

    /// e.g. "int8 53, bf16 1".
    public var description: String {
        [("int8", int8), ("bf16", bf16), ("f16", f16), ("f32", f32), ("other", other)]
            .filter { $0.1 > 0 }.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
    }

    /// Refuses an int8 model that ran no int8 kernel: serving it would lose its quantization.
    func requireInt8(engine: String, model: EngineModel) throws(EngineError) {
        guard int8 > 0 else {
            throw EngineError(
                .incompatibleModel,
                "\(engine) ran no int8 kernels for the int8 model \(model.file.lastPathComponent) (its layers ran \(self)); serving it would lose its quantization")
        }
    }

    /// The precision an engine reports for a quantized model: "int8" when every layer counted
    /// ran int8, else "int8+" the precision of the rest.
    func quantizedPrecision(rest: String) -> String { int8 == total ? "int8" : "int8+\(rest)" }
}
