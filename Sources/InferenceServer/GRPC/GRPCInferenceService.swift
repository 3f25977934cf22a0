import Classification
import Foundation
import GRPCCore
import KServeGRPC
import Logging
import ModelRegistry
import NIOCore
import NIOPosix

/// The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`): the same model,
/// limits and inference core as HTTP; this type only reads the messages into the core's
/// request and writes its reply back. Inputs come from `raw_input_contents` (FP32 tensors
/// copied into the slots from the message's bytes, BYTES images decoded from them) or from
/// typed `contents`; outputs go into `raw_output_contents`. Errors carry the HTTP path's
/// messages under the gRPC code that means the same.
struct GRPCInferenceService: Inference_GRPCInferenceService.SimpleServiceProtocol {
    let core: InferenceCore
    let logger: Logger
    var registry: ModelRegistry { core.registry }

    func serverLive(request: Inference_ServerLiveRequest, context: ServerContext) async throws -> Inference_ServerLiveResponse {
        .with { $0.live = registry.loaded.allSatisfy(\.isLive) }
    }

    func serverReady(request: Inference_ServerReadyRequest, context: ServerContext) async throws -> Inference_ServerReadyResponse {
        .with { $0.ready = registry.readinessProblem == nil }
    }

    /// Ready or not for a model the server knows (loaded, loading, unloaded); NOT_FOUND otherwise.
    func modelReady(request: Inference_ModelReadyRequest, context: ServerContext) async throws -> Inference_ModelReadyResponse {
        switch registry.lookup(request.name, version: request.version) {
        case .served(let model): return .with { $0.ready = model.isReady }
        case .notServing: return .with { $0.ready = false }
        case .unknown:
            do { _ = try core.model(request.name, version: request.version) } catch { throw RPCError(error) }
            return .with { $0.ready = false }
        }
    }

    func serverMetadata(request: Inference_ServerMetadataRequest, context: ServerContext) async throws -> Inference_ServerMetadataResponse {
        .with {
            $0.name = ServerIdentity.name
            $0.version = ServerIdentity.version
            $0.extensions = ServerIdentity.extensions
        }
    }

    func modelMetadata(request: Inference_ModelMetadataRequest, context: ServerContext) async throws -> Inference_ModelMetadataResponse {
        let model: LoadedModel
        do { model = try core.model(request.name, version: request.version) } catch { throw RPCError(error) }
        let tensor = { (name: String, datatype: String, shape: [Int]) in
            Inference_ModelMetadataResponse.TensorMetadata.with {
                $0.name = name
                $0.datatype = datatype
                $0.shape = shape.map(Int64.init)
            }
        }
        return .with {
            $0.name = model.name
            $0.versions = registry.loaded.filter { $0.name == model.name }.map(\.version)
            $0.platform = model.platform
            $0.inputs = model.inputs.map { tensor($0.name, $0.datatype, $0.shape) }
            $0.outputs = [tensor(model.manifest.output.name, "FP32", [-1, model.classes])]
        }
    }

    func modelConfig(request: Inference_ModelConfigRequest, context: ServerContext) async throws -> Inference_ModelConfigResponse {
        let model: LoadedModel
        do { model = try core.model(request.name, version: request.version) } catch { throw RPCError(error) }
        return .with { $0.config = model.tritonConfigMessage }
    }

    func modelStatistics(request: Inference_ModelStatisticsRequest, context: ServerContext) async throws -> Inference_ModelStatisticsResponse {
        let models: [LoadedModel]
        do {
            models = request.name.isEmpty ? registry.loaded : [try core.model(request.name, version: request.version)]
        } catch {
            throw RPCError(error)
        }
        return .with { $0.modelStats = models.map(\.tritonStatisticsMessage) }
    }

    func repositoryIndex(request: Inference_RepositoryIndexRequest, context: ServerContext) async throws -> Inference_RepositoryIndexResponse {
        .with { response in
            response.models = registry.index().filter { !request.ready || $0.state == .ready }.map { entry in
                .with {
                    $0.name = entry.name
                    $0.version = entry.version ?? ""
                    $0.state = entry.state.rawValue
                    $0.reason = entry.reason
                }
            }
        }
    }

    func repositoryModelLoad(request: Inference_RepositoryModelLoadRequest, context: ServerContext) async throws -> Inference_RepositoryModelLoadResponse {
        try await control(request.modelName) { (name: String) async throws(RegistryError) in try await registry.load(name) }
        return .init()
    }

    func repositoryModelUnload(
        request: Inference_RepositoryModelUnloadRequest, context: ServerContext
    ) async throws -> Inference_RepositoryModelUnloadResponse {
        try await control(request.modelName) { (name: String) async throws(RegistryError) in try await registry.unload(name) }
        return .init()
    }

    /// A load or unload, refused with INVALID_ARGUMENT naming why (control off, an unknown
    /// model, a failed load), as HTTP answers 400.
    private func control(_ name: String, _ body: (String) async throws(RegistryError) -> Void) async throws(RPCError) {
        guard registry.control != .none else { throw RPCError(code: .invalidArgument, message: RegistryError.controlDisabled.description) }
        do {
            try await body(name)
        } catch {
            throw RPCError(code: .invalidArgument, message: error.description)
        }
    }

    func modelInfer(request: Inference_ModelInferRequest, context: ServerContext) async throws -> Inference_ModelInferResponse {
        try await answer(request).response
    }

    /// The reply with the request's stage times in its `server-timing` metadata (the HTTP
    /// path's `Server-Timing` header), which `bench --grpc-…` reads.
    func modelInfer(
        request: ServerRequest<Inference_ModelInferRequest>, context: ServerContext
    ) async throws -> ServerResponse<Inference_ModelInferResponse> {
        let (response, stages) = try await answer(request.message)
        return ServerResponse(message: response, metadata: ["server-timing": .string(stages.serverTiming)])
    }

    /// One inference, counted in the metrics under the protocol and the status it ended with.
    private func answer(_ request: Inference_ModelInferRequest) async throws(RPCError) -> (response: Inference_ModelInferResponse, stages: StageTimes) {
        do {
            let labels = core.metricsLabels(request.modelName, version: request.modelVersion)
            return try await core.metrics.counting(.grpc, model: labels.name, version: labels.version, status: { _ in 200 }) {
                try await infer(request)
            }
        } catch let error as ServerError {
            throw RPCError(error)
        } catch {
            // The details are for the operator, not the client, as over HTTP.
            logger.error("gRPC request failed inside the server: \(error)")
            throw RPCError(ServerError(.internalServerError, "the request failed inside the server; its log says why"))
        }
    }

    private func infer(_ request: Inference_ModelInferRequest) async throws -> (response: Inference_ModelInferResponse, stages: StageTimes) {
        let started = ContinuousClock.now
        let model = try core.model(request.modelName, version: request.modelVersion)
        do {
            return try await infer(request, on: model, since: started)
        } catch {
            model.statistics.failed(seconds: (ContinuousClock.now - started).seconds)
            throw error
        }
    }

    private func infer(
        _ request: Inference_ModelInferRequest, on model: LoadedModel, since started: ContinuousClock.Instant
    ) async throws -> (response: Inference_ModelInferResponse, stages: StageTimes) {
        try core.requireServing(model)
        let held = try core.reserve(request.rawInputContents.reduce(0) { $0 + $1.count }, for: "the request's tensors", model: model)
        var stages = StageTimes()
        let parsed: InferenceRequest
        let timeout: Duration
        do {
            parsed = try stages.time(.parse) { () throws(ServerError) -> InferenceRequest in try Self.parse(request, model: model, memory: held) }
            timeout = try core.deadline(milliseconds: nil, microseconds: request.parameters["timeout"].map { $0.integer ?? 0 })
        } catch {
            held.release()
            throw error
        }
        let reply = try await withDeadline { abandonment throws(ServerError) in
            try await core.infer(parsed, on: model, held: held, within: timeout, on: eventLoop, logger: logger, onAbandon: abandonment)
        }
        stages = stages.merging(reply.stages)
        let response = stages.time(.respond) { Self.response(reply) }
        core.record(stages, samples: parsed.samples.count, seconds: (ContinuousClock.now - started).seconds, on: model)
        return (response, stages)
    }

    /// The request's one input and its outputs as the core takes them. Inputs come from
    /// `raw_input_contents`, else from typed `contents`, copied into bytes the budget counts.
    private static func parse(_ request: Inference_ModelInferRequest, model: LoadedModel, memory: MemoryReservation) throws(ServerError) -> InferenceRequest {
        let manifest = model.manifest
        guard request.inputs.count == 1, let input = request.inputs.first else { throw .badRequest("\"inputs\" must hold exactly one input") }
        try WireFormat.checkInput(name: input.name, datatype: input.datatype, tensorInput: manifest.input.name)
        let bytes: Data
        if !request.rawInputContents.isEmpty {
            guard request.rawInputContents.count == 1 else {
                throw .badRequest("raw_input_contents has \(request.rawInputContents.count) entries for 1 input")
            }
            bytes = request.rawInputContents[0]
        } else {
            guard input.hasContents else { throw .badRequest("input \"\(input.name)\" has neither raw_input_contents nor contents") }
            switch input.datatype {
            case "FP32":
                try memory.grow(by: input.contents.fp32Contents.count * 4, for: "the FP32 contents")
                bytes = input.contents.fp32Contents.withUnsafeBytes { Data($0) }
            case "BYTES":
                try memory.grow(by: input.contents.bytesContents.reduce(0) { $0 + 4 + $1.count }, for: "the BYTES contents")
                bytes = WireFormat.lengthPrefixed(input.contents.bytesContents)
            case let other:
                throw .badRequest("datatype \(other) is not supported; send FP32 tensors or BYTES images")
            }
        }
        let samples = try WireFormat.samples(
            datatype: input.datatype, shape: input.shape.map(Int.init), bytes: bytes, sampleShape: manifest.input.shape, maxSamples: model.maxSamplesPerRequest)
        let asked = request.outputs.isEmpty ? [Inference_ModelInferRequest.InferRequestedOutputTensor.with { $0.name = manifest.output.name }] : request.outputs
        guard asked.count == 1 else { throw .badRequest("\"outputs\" may name the model's one output, \"\(manifest.output.name)\", once") }
        let outputs = try asked.map { output throws(ServerError) in
            try WireFormat.requestedOutput(
                name: output.name, modelOutput: manifest.output.name, classification: output.parameters["classification"]?.integer, binary: true)
        }
        return InferenceRequest(id: request.id, samples: samples, outputs: outputs, timeoutParameter: nil)
    }

    /// The reply: each output's bytes in `raw_output_contents` (FP32 scores, or the
    /// classification extension's length-prefixed strings).
    private static func response(_ reply: InferenceReply) -> Inference_ModelInferResponse {
        .with { response in
            response.modelName = reply.model
            response.modelVersion = reply.version
            response.id = reply.id ?? ""
            for output in reply.outputs {
                response.outputs.append(.with {
                    $0.name = output.name
                    $0.datatype = output.datatype
                    $0.shape = output.shape.map(Int64.init)
                })
                response.rawOutputContents.append(output.bytes)
            }
        }
    }

    /// Runs `body` with an abandonment hook fired when gRPC cancels the call: the client's
    /// deadline passed (DEADLINE_EXCEEDED), or it cancelled the call.
    private func withDeadline<Result>(
        _ body: (_ onAbandon: (@escaping @Sendable (ServerError) -> Void) -> Void) async throws(ServerError) -> Result
    ) async throws(ServerError) -> Result {
        let hook = AbandonHook()
        do {
            return try await withRPCCancellationHandler {
                try await body { abandon in hook.set(abandon) }
            } onCancelRPC: {
                hook.fire(ServerError(.gatewayTimeout, "the request did not finish within its deadline (or the client cancelled it)"))
            }
        } catch let error as ServerError {
            throw error
        } catch {
            throw ServerError(.internalServerError, "the request failed inside the server; its log says why")
        }
    }

    private var eventLoop: any EventLoop { MultiThreadedEventLoopGroup.singleton.next() }
}

extension LoadedModel {
    /// Triton's model configuration as its gRPC message (what `tritonConfig` is over HTTP).
    var tritonConfigMessage: Inference_ModelConfig {
        let configuration = pool.configuration
        let gpu = configuration.engine.device.isGPU
        return .with { config in
            config.name = name
            config.platform = "onnxruntime_onnx"
            config.backend = configuration.engine.kind.rawValue
            config.maxBatchSize = Int32(configuration.maxBatch)
            config.input = [
                .with {
                    $0.name = manifest.input.name
                    $0.dataType = .typeFp32
                    $0.format = .nchw
                    $0.dims = manifest.input.shape.map(Int64.init)
                },
                .with {
                    $0.name = WireFormat.encodedImageInput
                    $0.dataType = .typeString
                    $0.dims = [1]
                },
            ]
            config.output = [.with {
                $0.name = manifest.output.name
                $0.dataType = .typeFp32
                $0.dims = [Int64(classes)]
            }]
            config.instanceGroup = [.with {
                $0.name = "\(name)_\(gpu ? "gpu" : "cpu")"
                $0.kind = gpu ? .gpu : .cpu
                $0.count = Int32(configuration.workers)
            }]
            config.dynamicBatching = .with { $0.maxQueueDelayMicroseconds = UInt64(configuration.batchDelay.seconds * 1e6) }
            config.versionPolicy = .with { $0.specific = .with { $0.versions = [Int64(version) ?? 1] } }
        }
    }

    /// Triton's statistics of one model version as its gRPC message (`tritonStatistics` over HTTP).
    var tritonStatisticsMessage: Inference_ModelStatistics {
        let snapshot = statistics.snapshot
        let executions = pool.status.executions
        let duration = { (count: Int, nanoseconds: UInt64) in
            Inference_StatisticDuration.with {
                $0.count = UInt64(count)
                $0.ns = nanoseconds
            }
        }
        let from = { (value: ModelStatistics.Duration) in duration(value.count, value.nanoseconds) }
        return .with { stats in
            stats.name = name
            stats.version = version
            stats.lastInference = snapshot.lastInference
            stats.inferenceCount = UInt64(snapshot.inferenceCount)
            stats.executionCount = UInt64(executions.values.reduce(0) { $0 + $1.count })
            stats.inferenceStats = .with {
                $0.success = from(snapshot.success)
                $0.fail = from(snapshot.fail)
                $0.queue = from(snapshot.queue)
                $0.computeInput = from(snapshot.computeInput)
                $0.computeInfer = from(snapshot.computeInfer)
                $0.computeOutput = from(snapshot.computeOutput)
                $0.cacheHit = duration(0, 0)
                $0.cacheMiss = duration(0, 0)
            }
            stats.batchStats = executions.keys.sorted().map { size in
                let execution = executions[size]!
                return .with {
                    $0.batchSize = UInt64(size)
                    $0.computeInput = duration(execution.count, 0)
                    $0.computeInfer = duration(execution.count, execution.inferenceNanoseconds)
                    $0.computeOutput = duration(execution.count, 0)
                }
            }
        }
    }
}
