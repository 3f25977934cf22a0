import Foundation
import ImagePipeline
import TestSupport
import Testing

/// The fuzzer's committed seed corpus (tools/fuzz/corpus: small real files of every format)
/// and every input it once crashed on (tools/fuzz/regressions): each decodes or is refused
/// with a typed error, never anything else.
@Suite struct FuzzCorpusTests {
    static let corpus = TestPaths.root.appendingPathComponent("tools/fuzz/corpus")
    static let regressions = TestPaths.root.appendingPathComponent("tools/fuzz/regressions")

    static func files(in folder: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    @Test("every seed of the corpus decodes; GIF, animated and multi-page files are refused by name", arguments: files(in: corpus))
    func seed(name: String) throws {
        let data = try Data(contentsOf: Self.corpus.appendingPathComponent(name))
        if name.hasSuffix(".gif") || name.hasPrefix("animated") || name.hasPrefix("multipage") {
            let error = #expect(throws: ImageDecodingError.self) { _ = try preprocess(data) }
            #expect(error?.kind == .unsupportedFormat)
        } else {
            #expect(throws: Never.self) { _ = try preprocess(data) }
        }
    }

    @Test func theCorpusCoversEveryFormat() {
        let extensions = Set(Self.files(in: Self.corpus).map { URL(fileURLWithPath: $0).pathExtension })
        #expect(extensions == ["jpg", "png", "bmp", "webp", "tiff", "gif"])
    }

    @Test("inputs that once crashed the fuzzer are now refused or decoded", arguments: files(in: regressions))
    func regression(name: String) throws {
        let data = try Data(contentsOf: Self.regressions.appendingPathComponent(name))
        do {
            _ = try preprocess(data)
        } catch {
            #expect(!error.message.isEmpty)
            #expect(![.invalidArgument, .decoderFailure].contains(error.kind), "\(error.kind): the input's fault, not the shim's")
        }
    }
}
