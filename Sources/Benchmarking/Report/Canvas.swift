import COpenCVCanvas
import Foundation

/// A raster canvas (OpenCV drawing through `COpenCVCanvas`) that becomes a PNG.
final class Canvas {
    struct Color {
        var red: UInt8, green: UInt8, blue: UInt8
        var native: vp_rgb { vp_rgb(red: red, green: green, blue: blue) }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let width: Int
    let height: Int
    private let canvas: OpaquePointer

    init(width: Int, height: Int, background: Color) throws(Failure) {
        guard let canvas = vp_canvas_create(Int32(width), Int32(height), background.native) else {
            throw Failure(description: "cannot make a \(width)×\(height) canvas")
        }
        self.width = width
        self.height = height
        self.canvas = canvas
    }

    deinit { vp_canvas_destroy(canvas) }

    func fill(x: Int, y: Int, width: Int, height: Int, _ color: Color) {
        vp_canvas_fill_rect(canvas, Int32(x), Int32(y), Int32(width), Int32(height), color.native)
    }

    func line(from start: (Int, Int), to end: (Int, Int), _ color: Color, thickness: Int = 1) {
        vp_canvas_line(canvas, Int32(start.0), Int32(start.1), Int32(end.0), Int32(end.1), color.native, Int32(thickness))
    }

    func dot(x: Int, y: Int, radius: Int, _ color: Color) {
        vp_canvas_circle(canvas, Int32(x), Int32(y), Int32(radius), color.native)
    }

    enum Alignment { case left, center, right }

    /// Hershey fonts draw ASCII only: the few other characters reports use, spelled in ASCII.
    private static let spelledInASCII: [Character: String] = ["×": "x", "·": "|", "–": "-", "—": "-", "≥": ">=", "≤": "<=", "µ": "u", "…": "..."]

    /// Text with its baseline at `y`; characters a Hershey font lacks become '?'.
    func text(_ string: String, x: Int, y: Int, size: Double = 0.5, _ color: Color, bold: Bool = false, align: Alignment = .left) {
        let ascii = string.map { $0.isASCII ? String($0) : Self.spelledInASCII[$0] ?? "?" }.joined()
        let thickness: Int32 = bold ? 2 : 1
        let width = Int(vp_canvas_text_width(ascii, size, thickness, nil))
        let left = switch align {
        case .left: x
        case .center: x - width / 2
        case .right: x - width
        }
        vp_canvas_text(canvas, ascii, Int32(left), Int32(y), size, color.native, thickness)
    }

    func png() throws(Failure) -> Data {
        var bytes: UnsafeMutablePointer<UInt8>?
        var count = 0
        guard vp_canvas_encode_png(canvas, &bytes, &count) == 0, let bytes else { throw Failure(description: "PNG encoding failed") }
        defer { vp_canvas_free_png(bytes) }
        return Data(bytes: bytes, count: count)
    }
}
