import Foundation
import ImagePipeline
import TestSupport
import Testing

/// The fuzzer's committed seed corpus (tools/fuzz/corpus: small real files of every format)
/// and the regression folder (tools/fuzz/regressions: hostile headers made by hand, and any
/// input the fuzzer crashes on once fixed): each decodes or is refused with a typed error,
/// never anything else.
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

    /// A parameterized test over an empty folder runs no case and passes: make sure both hold files.
    @Test func bothFoldersHoldInputs() {
        #expect(Self.files(in: Self.corpus).count >= 6)
        #expect(Self.files(in: Self.regressions).count >= 5)
    }

    @Test("hostile inputs and past crashes are refused or decoded", arguments: files(in: regressions))
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
