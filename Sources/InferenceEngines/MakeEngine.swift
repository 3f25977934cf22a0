@_exported import EngineInterface

/// Builds the engine `options` ask for.
public func makeEngine(model: EngineModel, options: EngineOptions) throws(EngineError) -> any InferenceEngine {
    switch options.kind {
    case .openvino: try OpenVINOEngine(model: model, options: options)
    case .opencv: try OpenCVEngine(model: model, options: options)
    case .onnxruntime: try OnnxRuntimeEngine(model: model, options: options)
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
