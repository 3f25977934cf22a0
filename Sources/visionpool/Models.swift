import ArgumentParser
import Classification
import Foundation
import InferenceEngines
import ModelCatalog

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the model catalog, add an ONNX classifier to it, or quantize one to int8.",
        subcommands: [List.self, Add.self, Quantize.self],
        defaultSubcommand: List.self
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the models in the catalog with their provenance, licence and the engines that run them.",
            discussion: """
                Engines are listed by what each supports: int8 (QDQ) models run on openvino and onnxruntime, which keep their \
                int8 kernels; opencv refuses them. --check loads every installed model on every engine and runs one sample, \
                printing the precision each engine really ran or why it could not.
                """
        )

        @Option(help: "The model catalog folder (default: $VISIONPOOL_MODELS, else the Models/ folder beside or above the binary).")
        var modelsDir: String?

        @Flag(help: "Load each installed model on every engine and run one sample (one thread each; seconds per model).")
        var check = false

        func run() throws {
            let catalog = ModelSelection.catalog(at: modelsDir)
            let entries = try catalog.entries()
            print("catalog \(catalog.directory.path)")
            for entry in entries {
                let manifest = entry.manifest
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
                if check && entry.isInstalled { print(Self.check(entry)) }
                if let quantization = manifest.quantization { print(Self.describe(quantization)) }
                print("""
                      provenance  \(manifest.provenance)
                      licence     \(manifest.licence)
                    """)
            }
        }

        /// Each engine's outcome of loading the model and running one sample of zeros.
        static func check(_ entry: CatalogEntry) -> String {
            EngineKind.allCases.enumerated().map { index, kind in
                let outcome: String
                do {
                    let engine = try makeEngine(model: try EngineModel(entry: entry), options: EngineOptions(kind: kind, threads: 1))
                    var input = [Float](repeating: 0, count: engine.model.sampleInputCount)
                    var output = [Float](repeating: 0, count: engine.model.outputCount)
                    try input.withUnsafeMutableBufferPointer { input in
                        try output.withUnsafeMutableBufferPointer { try engine.infer(batch: 1, input: input, output: $0) }
                    }
                    let description = engine.engineDescription
                    outcome = "runs at \(description.precision) (\(kind.rawValue) \(description.version))"
                } catch {
                    outcome = "cannot run it: \(error)"
                }
                let label = index == 0 ? "  check       " : "              "
                return label + kind.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0) + outcome
            }.joined(separator: "\n")
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
                lines.append("  kernels     \(kernels) (OpenVINO \(run.version), CPU flags: \(run.cpuFlags))")
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

extension ModelManifest {
    /// The manifest of an ONNX image classifier, its input and output read from the file
    /// (`ModelSignature`): the crop is the input's size and the short side is resized to
    /// `resize`, else to the crop × 8/7 as torchvision's evaluation does.
    static func classifier(
        in file: URL, name: String, preprocessing: Preprocessing, resize: Int? = nil, scores: Output.Kind = .logits,
        description: String, provenance: String, licence: String, labels: String?
    ) throws -> ModelManifest {
        let signature = try ModelSignature(file: file)
        let input = signature.inputShape, output = signature.outputShape
        guard input.count == 4, input[1] == 3, input[2] > 0, input[3] > 0 else {
            throw CommandFailure("\(file.path): the input \(signature.inputName) has shape \(input); an image classifier takes [batch, 3, height, width]")
        }
        guard output.count == 2, output[1] > 0 else {
            throw CommandFailure("\(file.path): the output \(signature.outputName) has shape \(output); a classifier gives [batch, classes]")
        }
        var preprocessing = preprocessing
        preprocessing.crop = [input[2], input[3]]
        preprocessing.resizeShortSide = resize ?? (max(input[2], input[3]) * 8 + 6) / 7
        return ModelManifest(
            name: name, description: description, file: file.lastPathComponent, weights: .pretrained, provenance: provenance, licence: licence,
            input: .init(name: signature.inputName, shape: Array(input.dropFirst())),
            output: .init(name: signature.outputName, kind: scores, classes: output[1]),
            preprocessing: preprocessing, labels: labels)
    }
}
