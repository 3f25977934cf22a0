import Classification
import Foundation
import GRPCCore
import KServeGRPC
import Logging
import NIOCore
import NIOPosix

/// The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`): the same model,
/// slots, limits and inference path as HTTP. Inputs come from `raw_input_contents` (FP32
/// tensors copied into the slots from the message's bytes, BYTES images decoded from them)
/// or from typed `contents`; outputs go into `raw_output_contents`. Errors carry the HTTP
/// path's messages under the gRPC code that means the same.
struct GRPCInferenceService<Model: ServedModel>: Inference_GRPCInferenceService.SimpleServiceProtocol {
    let path: InferencePath<Model>
    let logger: Logger
    var model: Model { path.model }

    func serverLive(request: Inference_ServerLiveRequest, context: ServerContext) async throws -> Inference_ServerLiveResponse {
        .with { $0.live = model.isLive }
    }

    func serverReady(request: Inference_ServerReadyRequest, context: ServerContext) async throws -> Inference_ServerReadyResponse {
        .with { $0.ready = model.isReady }
    }

    func modelReady(request: Inference_ModelReadyRequest, context: ServerContext) async throws -> Inference_ModelReadyResponse {
        do { try requireModel(request.name, version: request.version) } catch { throw RPCError(error) }
        return .with { $0.ready = model.isReady }
    }

    func serverMetadata(request: Inference_ServerMetadataRequest, context: ServerContext) async throws -> Inference_ServerMetadataResponse {
        .with {
            $0.name = ServerIdentity.name
            $0.version = ServerIdentity.version
            $0.extensions = ServerIdentity.extensions
        }
    }

    func modelMetadata(request: Inference_ModelMetadataRequest, context: ServerContext) async throws -> Inference_ModelMetadataResponse {
        do { try requireModel(request.name, version: request.version) } catch { throw RPCError(error) }
        let tensor = { (name: String, datatype: String, shape: [Int]) in
            Inference_ModelMetadataResponse.TensorMetadata.with {
                $0.name = name
                $0.datatype = datatype
                $0.shape = shape.map(Int64.init)
            }
        }
        return .with {
            $0.name = model.name
            $0.versions = ["1"]
            $0.platform = "onnx"
            $0.inputs = model.inputs.map { tensor($0.name, $0.datatype, $0.shape) }
            $0.outputs = [tensor(model.manifest.output.name, "FP32", [-1, model.classes])]
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
        let started = ContinuousClock.now
        do {
            let answer = try await infer(request)
            path.metrics.request(status: 200, seconds: (ContinuousClock.now - started).seconds, protocol: .grpc)
            return answer
        } catch {
            path.metrics.request(status: Int(error.status.code), seconds: (ContinuousClock.now - started).seconds, protocol: .grpc)
            throw RPCError(error)
        }
    }

    private func infer(_ request: Inference_ModelInferRequest) async throws(ServerError) -> (response: Inference_ModelInferResponse, stages: StageTimes) {
        do {
            try requireModel(request.modelName, version: request.modelVersion)
            try path.requireServing()
            let manifest = model.manifest
            guard request.inputs.count == 1, let input = request.inputs.first else { throw ServerError.badRequest("\"inputs\" must hold exactly one input") }
            try InferRequest.checkInput(name: input.name, datatype: input.datatype, tensorInput: manifest.input.name)
            let held = try path.settings.memory.reserve(request.rawInputContents.reduce(0) { $0 + $1.count }, for: "the request's tensors")
            defer { held.release() }
            var stages = StageTimes()
            let samples = try stages.time(.parse) { () throws(ServerError) -> InferRequest.Samples in
                try Self.samples(of: input, request: request, sampleShape: manifest.input.shape, maxSamples: model.maxSamplesPerRequest)
            }
            let outputs = try (request.outputs.isEmpty ? [Inference_ModelInferRequest.InferRequestedOutputTensor.with { $0.name = manifest.output.name }] : request.outputs)
                .map { output throws(ServerError) in
                    try InferRequest.requestedOutput(
                        name: output.name, modelOutput: manifest.output.name, classification: output.parameters["classification"]?.integer, binary: true)
                }
            guard outputs.count == 1 else { throw ServerError.badRequest("\"outputs\" may name the model's one output, \"\(manifest.output.name)\", once") }
            let timeout = try timeoutParameter(
                microseconds: request.parameters["timeout"].map { $0.integer ?? 0 }, limit: path.settings.requestTimeout)
            let (scores, poolStages) = try await withDeadline { abandonment in
                try await path.scores(for: samples, within: timeout, held: held, on: eventLoop, logger: logger, onAbandon: abandonment)
            }
            stages = stages.merging(poolStages)
            let response = stages.time(.respond) { reply(request, outputs: outputs, batch: samples.count, scores: scores) }
            path.metrics.stages(stages)
            return (response, stages)
        } catch let error as ServerError {
            throw error
        } catch {
            // The details are for the operator, not the client, as over HTTP.
            logger.error("gRPC request failed inside the server: \(error)")
            throw ServerError(.internalServerError, "the request failed inside the server; its log says why")
        }
    }

    /// The samples of `input`: its `raw_input_contents` entry, else its typed `contents`.
    private static func samples(
        of input: Inference_ModelInferRequest.InferInputTensor, request: Inference_ModelInferRequest, sampleShape: [Int], maxSamples: Int
    ) throws(ServerError) -> InferRequest.Samples {
        let shape = input.shape.map(Int.init)
        if !request.rawInputContents.isEmpty {
            guard request.rawInputContents.count == 1 else {
                throw .badRequest("raw_input_contents has \(request.rawInputContents.count) entries for 1 input")
            }
            return try InferRequest.rawSamples(
                datatype: input.datatype, shape: shape, bytes: request.rawInputContents[0], sampleShape: sampleShape, maxSamples: maxSamples)
        }
        guard input.hasContents else { throw .badRequest("input \"\(input.name)\" has neither raw_input_contents nor contents") }
        switch input.datatype {
        case "FP32":
            let bytes = input.contents.fp32Contents.withUnsafeBytes { Data($0) }
            return try InferRequest.rawSamples(datatype: "FP32", shape: shape, bytes: bytes, sampleShape: sampleShape, maxSamples: maxSamples)
        case "BYTES":
            let bytes = InferRequest.lengthPrefixedBytes(input.contents.bytesContents)
            return try InferRequest.rawSamples(datatype: "BYTES", shape: shape, bytes: bytes, sampleShape: sampleShape, maxSamples: maxSamples)
        case let other:
            throw .badRequest("datatype \(other) is not supported; send FP32 tensors or BYTES images")
        }
    }

    /// The reply: FP32 scores `[batch, classes]`, or the classification extension's
    /// "score:index:label" strings `[batch, K]`, as raw output contents.
    private func reply(
        _ request: Inference_ModelInferRequest, outputs: [InferRequest.RequestedOutput], batch: Int, scores: [Float]
    ) -> Inference_ModelInferResponse {
        let classes = model.classes
        return .with { response in
            response.modelName = model.name
            response.modelVersion = "1"
            response.id = request.id
            for output in outputs {
                var tensor = Inference_ModelInferResponse.InferOutputTensor()
                tensor.name = output.name
                if let k = output.classification {
                    let top = min(k, classes)
                    tensor.datatype = "BYTES"
                    tensor.shape = [Int64(batch), Int64(top)]
                    let strings = (0..<batch).flatMap { row in model.classificationStrings(scores[(row * classes)..<((row + 1) * classes)], top: top) }
                    response.rawOutputContents.append(InferRequest.lengthPrefixedBytes(strings.map(\.utf8)))
                } else {
                    tensor.datatype = "FP32"
                    tensor.shape = [Int64(batch), Int64(classes)]
                    response.rawOutputContents.append(scores.withUnsafeBufferPointer { Data(buffer: $0) })
                }
                response.outputs.append(tensor)
            }
        }
    }

    private func requireModel(_ name: String, version: String) throws(ServerError) {
        guard name == model.name else { throw ServerError(.notFound, "unknown model \"\(name)\"; this server serves \"\(model.name)\"") }
        guard version.isEmpty || version == "1" else { throw ServerError(.notFound, "model \(model.name) has no version \"\(version)\"; it has version 1") }
    }

    /// Runs `body` with an abandonment hook fired when gRPC cancels the call: the client's
    /// deadline passed (DEADLINE_EXCEEDED), or it cancelled the call.
    private func withDeadline<Result>(
        _ body: (_ onAbandon: (@escaping @Sendable (ServerError) -> Void) -> Void) async throws -> Result
    ) async throws -> Result {
        let hook = AbandonHook()
        return try await withRPCCancellationHandler {
            try await body { abandon in hook.set(abandon) }
        } onCancelRPC: {
            hook.fire(ServerError(.gatewayTimeout, "the request did not finish within its deadline (or the client cancelled it)"))
        }
    }

    private var eventLoop: any EventLoop { MultiThreadedEventLoopGroup.singleton.next() }
}
