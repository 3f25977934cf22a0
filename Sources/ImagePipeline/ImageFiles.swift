import Foundation

/// Image files on disk: what a folder walk picks up, and reading one within a size bound.
public enum ImageFiles {
    /// Files a folder walk picks up; files named directly are always tried.
    public static let extensions: Set<String> = ["jpg", "jpeg", "jpe", "png", "bmp", "dib", "webp", "tif", "tiff"]
    /// Files larger than this are refused before they are read.
    public static let maxFileBytes = 256 << 20

    /// Why a file could not be read.
    public struct ReadError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Files named directly, then images found in folders (sorted); and the paths that do not exist.
    public static func expand(_ paths: [String]) -> (images: [String], missing: [String]) {
        var images: [String] = []
        var missing: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                missing.append(path)
                continue
            }
            guard isDirectory.boolValue else {
                images.append(path)
                continue
            }
            let walker = FileManager.default.enumerator(
                at: URL(fileURLWithPath: path, isDirectory: true), includingPropertiesForKeys: [.isRegularFileKey],
                options: [.skipsHiddenFiles])
            var found: [String] = []
            while let url = walker?.nextObject() as? URL {
                // Symbolic links to images count; the walk itself does not descend into linked folders.
                if extensions.contains(url.pathExtension.lowercased()),
                   (try? url.resolvingSymlinksInPath().resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
                    found.append(url.path)
                }
            }
            images += found.sorted()
        }
        return (images, missing)
    }

    /// The file's bytes, refusing files over `maxFileBytes` before reading them.
    public static func read(_ path: String) throws(ReadError) -> Data {
        let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
        guard size <= maxFileBytes else {
            throw ReadError(description: "the file is \(size >> 20) MiB, over the \(maxFileBytes >> 20) MiB limit")
        }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ReadError(description: "cannot read the file: \(error.localizedDescription)")
        }
    }
}
