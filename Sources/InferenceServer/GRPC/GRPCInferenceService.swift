import Classification
import Foundation
import GRPCCore
import KServeGRPC
import Logging
import NIOCore
import NIOPosix

/// The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`): the same model,
/// limits and inference core as HTTP; this type only reads the messages into the core's
/// request and writes its reply back. Inputs come from `raw_input_contents` (FP32 tensors
/// copied into the slots from the message's bytes, BYTES images decoded from them) or from
/// typed `contents`; outputs go into `raw_output_contents`. Errors carry the HTTP path's
/// messages under the gRPC code that means the same.
struct GRPCInferenceService<Model: ServedModel>: Inference_GRPCInferenceService.SimpleServiceProtocol {
    let core: InferenceCore<Model>
    let logger: Logger
    var model: Model { core.model }

    func serverLive(request: Inference_ServerLiveRequest, context: ServerContext) async throws -> Inference_ServerLiveResponse {
        .with { $0.live = model.isLive }
    }

    func serverReady(request: Inference_ServerReadyRequest, context: ServerContext) async throws -> Inference_ServerReadyResponse {
        .with { $0.ready = model.isReady }
    }

    func modelReady(request: Inference_ModelReadyRequest, context: ServerContext) async throws -> Inference_ModelReadyResponse {
        do { try model.check(name: request.name, version: request.version) } catch { throw RPCError(error) }
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
        do { try model.check(name: request.name, version: request.version) } catch { throw RPCError(error) }
        let tensor = { (name: String, datatype: String, shape: [Int]) in
            Inference_ModelMetadataResponse.TensorMetadata.with {
                $0.name = name
                $0.datatype = datatype
                $0.shape = shape.map(Int64.init)
            }
        }
        return .with {
            $0.name = model.name
            $0.versions = [model.version]
            $0.platform = model.platform
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
        do {
            return try await core.metrics.counting(.grpc, status: { _ in 200 }) { try await infer(request) }
        } catch let error as ServerError {
            throw RPCError(error)
        } catch {
            // The details are for the operator, not the client, as over HTTP.
            logger.error("gRPC request failed inside the server: \(error)")
            throw RPCError(ServerError(.internalServerError, "the request failed inside the server; its log says why"))
        }
    }

    private func infer(_ request: Inference_ModelInferRequest) async throws -> (response: Inference_ModelInferResponse, stages: StageTimes) {
        try model.check(name: request.modelName, version: request.modelVersion)
        try core.requireServing()
        let held = try core.reserve(request.rawInputContents.reduce(0) { $0 + $1.count }, for: "the request's tensors")
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
            try await core.infer(parsed, held: held, within: timeout, on: eventLoop, logger: logger, onAbandon: abandonment)
        }
        stages = stages.merging(reply.stages)
        let response = stages.time(.respond) { Self.response(reply) }
        core.record(stages)
        return (response, stages)
    }

    /// The request's one input and its outputs as the core takes them. Inputs come from
    /// `raw_input_contents`, else from typed `contents`, copied into bytes the budget counts.
    private static func parse(_ request: Inference_ModelInferRequest, model: Model, memory: MemoryReservation) throws(ServerError) -> InferenceRequest {
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
