import ArgumentParser
import Foundation
import InferenceEngines
import ModelCatalog

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the model catalog, or add an ONNX classifier to it.",
        subcommands: [List.self, Add.self],
        defaultSubcommand: List.self
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the models in the catalog with their provenance and licence.")

        @Option(help: "The model catalog folder (default: $VISIONPOOL_MODELS, else the checkout's Models/).")
        var modelsDir: String?

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
                      provenance  \(manifest.provenance)
                      licence     \(manifest.licence)
                    """)
            }
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

        @Option(help: "The model catalog folder (default: $VISIONPOOL_MODELS, else the checkout's Models/).")
        var modelsDir: String?

        @Flag(help: "Overwrite a model of the same name.")
        var replace = false

        func run() throws {
            guard var preprocessing = ModelManifest.Preprocessing.presets[preprocess] else {
                throw ValidationError("unknown preset \(preprocess); choose imagenet, tensorflow or caffe")
            }
            let modelURL = URL(fileURLWithPath: file)
            let signature = try ModelSignature(file: modelURL)
            let input = signature.inputShape, output = signature.outputShape
            guard input.count == 4, input[1] == 3, input[2] > 0, input[3] > 0 else {
                throw CommandFailure("\(file): the input \(signature.inputName) has shape \(input); an image classifier takes [batch, 3, height, width]")
            }
            guard output.count == 2, output[1] > 0 else {
                throw CommandFailure("\(file): the output \(signature.outputName) has shape \(output); a classifier gives [batch, classes]")
            }
            preprocessing.crop = [input[2], input[3]]
            preprocessing.resizeShortSide = resize ?? (max(input[2], input[3]) * 8 + 6) / 7
            let modelName = name ?? modelURL.deletingPathExtension().lastPathComponent.lowercased()
            let manifest = ModelManifest(
                name: modelName, description: description ?? "\(modelURL.lastPathComponent), added with `visionpool models add`",
                file: modelURL.lastPathComponent, weights: .pretrained, provenance: provenance, licence: licence,
                input: .init(name: signature.inputName, shape: Array(input.dropFirst())),
                output: .init(name: signature.outputName, kind: scores, classes: output[1]),
                preprocessing: preprocessing, labels: labels)
            let catalog = ModelSelection.catalog(at: modelsDir)
            let entry = try catalog.add(manifest, modelFile: modelURL, labelsFile: labels.map { URL(fileURLWithPath: $0) }, replacing: replace)
            print("added \(entry.manifest.name) to \(entry.manifestURL.path)")
        }
    }
}
