@_exported import EngineInterface

/// Builds the engine `options` ask for.
public func makeEngine(model: EngineModel, options: EngineOptions) throws(EngineError) -> any InferenceEngine {
    switch options.kind {
    case .openvino: try OpenVINOEngine(model: model, options: options)
    case .opencv: try OpenCVEngine(model: model, options: options)
    case .onnxruntime: try OnnxRuntimeEngine(model: model, options: options)
    }
}

/// An engine compiled and run once at every batch size it will serve, and what it runs as.
public struct LoadedEngine {
    public let engine: any InferenceEngine
    /// The engine's own description, with the precision fallback that got it running and,
    /// when asked for, its kernels.
    public let description: EngineDescription
    /// How long the largest warm-up batch took: the pool's watchdog scales it into a timeout.
    public let largestBatchTime: Duration
}

/// Builds the engine `options` ask for, runs it once on zeros at every batch size up to
/// `maxBatch` (so no request waits for a compilation, and a model that compiles but cannot run
/// fails here), and counts its kernels if `census` asks.
///
/// A precision left to the engine (`.automatic`) that cannot compile or run the model is not
/// the end: the engine is built again at the next precision down (OpenVINO: bf16 → f32) and
/// `description.fallback` says what failed and why. OpenVINO 2026.4 picks bf16 on CPUs with
/// AVX512_BF16 or AMX, and also under an `ONEDNN_MAX_CPU_ISA` cap whose kernels have no bf16,
/// so both an AMX Xeon and a capped run need this. A precision the caller named is kept or
/// refused, naming the model, the precision and the engine's reason.
public func loadEngine(model: EngineModel, options: EngineOptions, warmUpBatches maxBatch: Int = 1, census: Bool = false) throws(EngineError) -> LoadedEngine {
    do {
        return try load(model: model, options: options, maxBatch: maxBatch, census: census)
    } catch let failure where failure.kind == .loadFailed || failure.kind == .inferenceFailed {
        let file = model.file.lastPathComponent
        guard options.precision == .automatic else {
            throw EngineError(
                failure.kind,
                "\(file) cannot run at \(options.precision.rawValue) on \(options.kind.rawValue) (the precision asked for; the default lets the engine choose one that runs): \(failure.message)")
        }
        guard let (chosen, lower) = options.kind.automaticPrecisionFallback else { throw failure }
        var fallen = options
        fallen.precision = lower
        let loaded: LoadedEngine
        do {
            loaded = try load(model: model, options: fallen, maxBatch: maxBatch, census: census)
        } catch {
            throw EngineError(error.kind, "\(file) cannot run at \(chosen) (\(options.kind.rawValue)'s choice on this CPU: \(failure.message)) nor at \(lower.rawValue): \(error.message)")
        }
        var description = loaded.description
        description.fallback = PrecisionFallback(from: chosen, to: lower.rawValue, reason: failure.message)
        return LoadedEngine(engine: loaded.engine, description: description, largestBatchTime: loaded.largestBatchTime)
    }
}

private func load(model: EngineModel, options: EngineOptions, maxBatch: Int, census: Bool) throws(EngineError) -> LoadedEngine {
    let engine = try makeEngine(model: model, options: options)
    var largest = Duration.zero
    for batch in 1...max(1, maxBatch) {
        let input = UnsafeMutableBufferPointer<Float>.allocate(capacity: batch * model.sampleInputCount)
        let output = UnsafeMutableBufferPointer<Float>.allocate(capacity: batch * model.outputCount)
        defer {
            input.deallocate()
            output.deallocate()
        }
        input.initialize(repeating: 0)
        let start = ContinuousClock.now
        try engine.infer(batch: batch, input: input, output: output)
        largest = ContinuousClock.now - start
    }
    var description = engine.engineDescription
    if census, description.kernels == nil { description.kernels = try engine.kernelCensus() }
    return LoadedEngine(engine: engine, description: description, largestBatchTime: largest)
}

extension EngineKind {
    /// When the engine's automatic precision fails: what it had chosen, and the precision to
    /// try instead; nil where nothing lies below (the engine runs f32, or picks none itself).
    var automaticPrecisionFallback: (chosen: String, lower: Precision)? {
        guard self == .openvino, let chosen = OpenVINOEngine.defaultPrecision, chosen != Precision.f32.rawValue else { return nil }
        return (chosen, .f32)
    }
}

/// Calls a C shim function that fills a message buffer on failure.
func callReportingMessage(_ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) -> String? {
    withUnsafeTemporaryAllocation(of: CChar.self, capacity: 1024) { buffer in
        buffer[0] = 0
        let status = body(buffer.baseAddress!, buffer.count)
        return status == 0 ? nil : String(cString: buffer.baseAddress!)
    }
}

extension KernelCensus {
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
