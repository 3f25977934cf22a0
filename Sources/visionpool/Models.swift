import ArgumentParser
import Classification
import Foundation
import InferenceEngines
import ModelCatalog
import ModelRegistry
import Logging
import WorkerPool

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the model catalog, add an ONNX classifier to it, or quantize one to int8.",
        subcommands: [List.self, Add.self, Quantize.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the models in the catalog with their provenance, licence and the engines that run them.",
            discussion: """
                Engines are listed by what each supports: int8 (QDQ) models run on openvino and onnxruntime, which keep their \
                int8 kernels; opencv refuses them. --check starts each installed model on every engine (or --engine's) in a \
                worker of the pool, as serve and classify do, and runs one sample: it prints the precision each engine really \
                ran, the precision it fell back from if its own choice could not run the model on this CPU, and the kernels \
                its layers ran by precision and instruction set; or why it could not run. Models set-up could not produce on \
                this machine are listed last, with the reason.
                """
        )

        @Option(help: "The model catalog folder (default: $VISIONPOOL_MODELS, else the Models/ folder beside or above the binary).")
        var modelsDir: String?

        @Flag(help: "Start each installed model on every engine in a pool worker and run one sample (one thread each; seconds per model).")
        var check = false

        @Option(help: "With --check, check this engine only (openvino, onnxruntime or opencv).")
        var engine: EngineKind?

        @Option(help: "With --check, the precision to run at: default (each engine's choice), f32, bf16 or f16.")
        var precision: Precision = .automatic

        @Flag(help: "One JSON object per model on standard output, for scripts.")
        var json = false

        func validate() throws {
            if (engine != nil || precision != .automatic), !check { throw ValidationError("--engine and --precision shape what --check runs; pass --check too") }
        }

        func run() async throws {
            let catalog = ModelSelection.catalog(at: modelsDir)
            let entries = try catalog.entries()
            let unavailable = catalog.unavailableModels()
            if !json { print("catalog \(catalog.directory.path)") }
            for entry in entries {
                let manifest = entry.manifest
                var checks: [EngineCheck] = []
                if check && entry.isInstalled {
                    for kind in engine.map({ [$0] }) ?? EngineKind.allCases {
                        checks.append(await EngineCheck(entry, on: EngineOptions(kind: kind, precision: precision)))
                    }
                }
                if json {
                    print(Self.jsonLine(entry, checks: checks))
                    continue
                }
                let status = entry.isInstalled ? "installed" : "not installed (run tools/setup.sh)"
                let isDefault = manifest.name == ModelCatalog.defaultModelName ? ", default" : ""
                print("""

                    \(manifest.name)  [\(status)\(isDefault)]
                      \(manifest.description)
                      weights     \(manifest.weights.rawValue)
                      input       \(manifest.input.name) \(manifest.input.layout) \(manifest.input.shape), \(manifest.preprocessing.channelOrder.rawValue), resize \(manifest.preprocessing.resizeShortSide) → crop \(manifest.preprocessing.crop)
                      output      \(manifest.output.name): \(manifest.output.classes) \(manifest.output.kind.rawValue)
                      precision   \(manifest.precision?.rawValue ?? "f32")
                      engines     \(EngineKind.running(quantized: manifest.isQuantized).map(\.rawValue).joined(separator: ", "))
                    """)
                for (index, check) in checks.enumerated() { print(check.lines(first: index == 0)) }
                if let quantization = manifest.quantization { print(Self.describe(quantization)) }
                print("""
                      provenance  \(manifest.provenance)
                      licence     \(manifest.licence)
                    """)
            }
            for (name, reason) in unavailable.sorted(by: { $0.key < $1.key }) {
                if json {
                    print(Self.jsonText(["name": name, "installed": false, "unavailable": reason]))
                } else {
                    print("\n\(name)  [not available on this machine]\n  reason      \(reason)")
                }
            }
        }

        /// One model as a JSON object: what the manifest says, and each engine's check.
        static func jsonLine(_ entry: CatalogEntry, checks: [EngineCheck]) -> String {
            let manifest = entry.manifest
            var object: [String: Any] = [
                "name": manifest.name, "description": manifest.description, "installed": entry.isInstalled, "weights": manifest.weights.rawValue,
                "precision": manifest.precision?.rawValue ?? "f32", "engines": EngineKind.running(quantized: manifest.isQuantized).map(\.rawValue),
                "provenance": manifest.provenance, "licence": manifest.licence,
            ]
            if !checks.isEmpty { object["check"] = checks.map(\.json) }
            return jsonText(object)
        }

        static func jsonText(_ object: [String: Any]) -> String {
            String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data(), as: UTF8.self)
        }

        /// How an int8 model was made and how closely it agrees with its f32 model.
        static func describe(_ q: ModelManifest.Quantization) -> String {
            let percent = { (fraction: Double) in String(format: "%.1f %%", fraction * 100) }
            var accuracy = "top-1 agreement \(percent(q.top1Agreement)) with \(q.sourceModel) (at least \(percent(q.minAgreement)) required), top-5 overlap \(percent(q.top5Overlap))"
            if let baseline = q.f32AtDefaultPrecisionTop1Agreement {
                accuracy += "; \(q.sourceModel) itself at OpenVINO's default precision: \(percent(baseline))"
            }
            var lines = [
                "  quantized   by \(q.tool) from \(q.sourceModel), recipe \(q.recipe)",
                "  accuracy    \(accuracy)",
                "  calibrated  on \(q.calibration.inputs) inputs from \(q.calibration.photos) photos (\(q.calibration.source ?? "bundled photos")); validated on \(q.validation.inputs) inputs from \(q.validation.photos) other photos",
            ]
            if let run = q.openvino {
                let kernels = run.kernels.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                lines.append("  kernels     \(kernels) (OpenVINO \(run.version)\(run.precision.map { " at \($0)" } ?? ""), CPU flags: \(run.cpuFlags))")
                if let fallback = run.precisionFallback { lines.append("              \(fallback)") }
            }
            return lines.joined(separator: "\n")
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add your own ONNX image classifier to the catalog.",
            discussion: """
                The model must take one NCHW float32 image input [batch, 3, H, W] and give one score per class. \
                Its input and output are read from the file; preprocessing comes from a preset: \
                imagenet (torchvision: RGB, ImageNet mean/std), tensorflow ((pixel − 127) / 128, RGB) or caffe (BGR, mean only). \
                The file and labels are copied into the catalog.
                """
        )

        @Argument(help: "The ONNX file.", completion: .file(extensions: ["onnx"]))
        var file: String

        @Option(help: "Catalog name (a–z, 0–9, '.', '_', '-'); defaults to the file name.")
        var name: String?

        @Option(help: "Labels file: one class name per line, in class order.", completion: .file())
        var labels: String?

        @Option(help: "Preprocessing preset: imagenet, tensorflow or caffe.")
        var preprocess: String = "imagenet"

        @Option(help: "Resize the short side to this before the centre crop (default: input size × 8/7).")
        var resize: Int?

        @Option(help: "What the model outputs: logits (softmax is applied) or probabilities.")
        var scores: ModelManifest.Output.Kind = .logits

        @Option(help: "One line saying what the model is.")
        var description: String?

        @Option(help: "Where the weights came from.")
        var provenance: String = "added by the user"

        @Option(help: "The weights' licence.")
        var licence: String = "unknown"

        @Option(help: "The model catalog folder (default: $VISIONPOOL_MODELS, else the Models/ folder beside or above the binary).")
        var modelsDir: String?

        @Flag(help: "Overwrite a model of the same name.")
        var replace = false

        func run() throws {
            guard let preprocessing = ModelManifest.Preprocessing.presets[preprocess] else {
                throw ValidationError("unknown preset \(preprocess); choose imagenet, tensorflow or caffe")
            }
            let modelURL = URL(fileURLWithPath: file)
            let manifest = try ModelManifest.classifier(
                in: modelURL, name: name ?? modelURL.deletingPathExtension().lastPathComponent.lowercased(),
                preprocessing: preprocessing, resize: resize, scores: scores,
                description: description ?? "\(modelURL.lastPathComponent), added with `visionpool models add`",
                provenance: provenance, licence: licence, labels: labels)
            let catalog = ModelSelection.catalog(at: modelsDir)
            let entry = try catalog.add(manifest, modelFile: modelURL, labelsFile: labels.map { URL(fileURLWithPath: $0) }, replacing: replace)
            print("added \(entry.manifest.name) to \(entry.manifestURL.path)")
        }
    }

    struct Quantize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Quantize a catalog model to int8 and add it, if it agrees closely enough with the f32 model.",
            discussion: """
                Runs tools/models/quantize.py in the checkout's Python environment (tools/setup.sh makes it): NNCF \
                post-training quantization calibrated on the bundled photos (or --calibration DIR), then top-1 agreement \
                and top-5 overlap with the f32 model on 500 validation inputs from other photos. Below --min-agreement \
                nothing is written and the exit status is 2. The int8 model runs on --engine openvino or onnxruntime.
                """
        )

        @Argument(help: "Catalog name of the f32 model.")
        var model: String

        @Option(help: "Catalog name of the int8 model (default: MODEL-int8).")
        var name: String?

        @Option(help: "Calibrate on the images in this folder instead of the bundled photos.", completion: .directory)
        var calibration: String?

        @Option(help: "Least top-1 agreement with the f32 model, 0–1.")
        var minAgreement: Double = 0.97

        @Option(help: "Calibration inputs (views of the calibration photos).")
        var calibrationSize: Int = 300

        @Option(help: "Validation inputs (views of other photos).")
        var validationSize: Int = 500

        @Option(help: "Recipes to try in order until one agrees enough: default, keep-ends, keep-depthwise.")
        var recipes: String = "default,keep-ends,keep-depthwise"

        @Option(help: "The model catalog folder (default: $VISIONPOOL_MODELS, else the Models/ folder beside or above the binary).")
        var modelsDir: String?

        func validate() throws {
            guard minAgreement > 0 && minAgreement <= 1 else { throw ValidationError("--min-agreement is a fraction in (0, 1], e.g. 0.97") }
            guard calibrationSize >= 1, validationSize >= 1 else { throw ValidationError("--calibration-size and --validation-size must be at least 1") }
        }

        func run() throws {
            // Quantizing is a developer's task: it needs the checkout (its tools/ and .venv/)
            // that holds the binary's own catalog, wherever the models are written.
            let checkout = ModelCatalog.defaultDirectory(environment: [:]).deletingLastPathComponent()
            let catalog = ModelSelection.catalog(at: modelsDir).directory
            let python = checkout.appendingPathComponent(".venv/bin/python"), script = checkout.appendingPathComponent("tools/models/quantize.py")
            guard FileManager.default.isExecutableFile(atPath: python.path), FileManager.default.fileExists(atPath: script.path) else {
                throw CommandFailure("quantizing needs the checkout's Python environment with NNCF: run tools/setup.sh in \(checkout.path)")
            }
            var arguments = [
                script.path, model, "--models-dir", catalog.path,
                "--min-agreement", String(minAgreement), "--calibration-size", String(calibrationSize),
                "--validation-size", String(validationSize), "--recipes", recipes,
            ]
            if let name { arguments += ["--name", name] }
            if let calibration { arguments += ["--calibration", calibration] }
            let process = Process()
            process.executableURL = python
            process.arguments = arguments
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw ExitCode(process.terminationStatus) }
        }
    }
}

/// One engine's outcome of starting a model in a pool worker, as serve and classify would, and
/// running one sample of zeros through it.
struct EngineCheck {
    let engine: EngineKind
    let outcome: Result<EngineDescription, Error>

    init(_ entry: CatalogEntry, on options: EngineOptions) async {
        engine = options.kind
        do {
            var configuration = try PoolConfiguration(entry: entry, engine: options, workers: 1, threadsPerWorker: 1)
            configuration.countKernels = true
            // What the check finds is its output; the pool's own warnings would only repeat it.
            var quiet = Logger(label: "visionpool.models.check", factory: { StreamLogHandler.standardError(label: $0) })
            quiet.logLevel = .critical
            configuration.logger = quiet
            let pool = try WorkerPool(configuration: configuration)
            do {
                try await pool.start()
                _ = try await pool.infer(prepare: { $0.initialize(repeating: 0) }, consume: { _, _ in () })
                let description = pool.status.workers.first?.engine
                await pool.shutdown()
                outcome = description.map { .success($0) } ?? .failure(PoolError.startFailed("the worker described no engine"))
            } catch {
                await pool.shutdown()
                throw error
            }
        } catch PoolError.startFailed(let reason) {
            outcome = .failure(CheckFailure(reason: reason))
        } catch {
            outcome = .failure(error)
        }
    }

    struct CheckFailure: Error, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }

    /// The check's lines under a model in `visionpool models --check`.
    func lines(first: Bool) -> String {
        let label = (first ? "  check       " : "              ") + engine.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)
        let indent = String(repeating: " ", count: 26)
        switch outcome {
        case .success(let description):
            var text = "\(label)runs at \(description.precision) (\(engine.rawValue) \(description.version))"
            if let kernels = description.kernels { text += "\n\(indent)layers ran \(kernels)" }
            if let fallback = description.fallback { text += "\n\(indent)\(fallback)" }
            return text
        case .failure(let error):
            return "\(label)cannot run it: \(error)"
        }
    }

    var json: [String: Any] {
        switch outcome {
        case .success(let description):
            var object: [String: Any] = ["engine": engine.rawValue, "runs": true, "precision": description.precision, "version": description.version]
            if let kernels = description.kernels {
                object["kernels"] = [
                    "int8": kernels.int8, "bf16": kernels.bf16, "f16": kernels.f16, "f32": kernels.f32, "other": kernels.other,
                    "instruction_sets": kernels.instructionSets,
                ]
            }
            if let fallback = description.fallback { object["fallback"] = ["from": fallback.from, "to": fallback.to, "reason": fallback.reason] }
            return object
        case .failure(let error):
            return ["engine": engine.rawValue, "runs": false, "error": "\(error)"]
        }
    }
}
