import Foundation

/// The tensor `data` of a JSON infer request, found and parsed without building it as JSON
/// objects: JSONSerialization boxes every number in an `NSNumber` (some 50 bytes for a
/// 6-byte "0.123,"), so four parallel 60 MiB bodies once took the front to 4 GB. Here the
/// request is scanned once for the byte range of `inputs[0].data`; the rest of the JSON (now
/// small) goes to JSONSerialization, and FP32 numbers are parsed from the range straight into
/// floats, counted against the shape as they come.
struct JSONTensorData {
    /// The JSON with `inputs[0].data` replaced by `null`.
    let header: Data
    /// Where `inputs[0].data` was, as offsets into the JSON; nil when it has none.
    let dataRange: Range<Int>?

    /// Deeper nesting than any tensor needs is refused rather than followed.
    static let maxDepth = 64

    init(json: Data) throws(ServerError) {
        let found = json.withUnsafeBytes { bytes in
            Result { () throws(ServerError) in
                var scanner = Scanner(bytes)
                return try scanner.findInputData()
            }
        }
        dataRange = try found.get()
        guard let range = dataRange else {
            header = json
            return
        }
        var header = Data(json.prefix(range.lowerBound))
        header.append(contentsOf: "null".utf8)
        header.append(json.suffix(from: json.startIndex + range.upperBound))
        self.header = header
    }

    /// The numbers at `range` of `json` (one, or nested lists of them, row-major) as floats:
    /// exactly `expected` of them, refused as soon as there are more.
    static func floats(in json: Data, range: Range<Int>, expected: Int) throws(ServerError) -> [Float] {
        let parsed = json.withUnsafeBytes { bytes in
            Result { () throws(ServerError) in
                var scanner = Scanner(UnsafeRawBufferPointer(rebasing: bytes[range]))
                return try scanner.numbers(expected: expected)
            }
        }
        return try parsed.get()
    }

    /// Moves through JSON bytes; it checks only what it needs to find and parse tensor data,
    /// leaving the rest of the grammar to JSONSerialization.
    private struct Scanner {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        init(_ bytes: UnsafeRawBufferPointer) {
            self.bytes = bytes
        }

        /// The range of the value of `data` in the first element of the top-level `inputs`.
        mutating func findInputData() throws(ServerError) -> Range<Int>? {
            var found: Range<Int>?
            var sawInputs = false
            skipWhitespace()
            try members { scanner, key throws(ServerError) in
                guard key == "inputs" else { return try scanner.skipValue(depth: 1) }
                guard !sawInputs else { throw .badRequest("the request names \"inputs\" twice") }
                sawInputs = true
                guard scanner.peek() == UInt8(ascii: "[") else { return try scanner.skipValue(depth: 1) }
                var index = 0
                try scanner.elements { scanner throws(ServerError) in
                    defer { index += 1 }
                    guard index == 0, scanner.peek() == UInt8(ascii: "{") else { return try scanner.skipValue(depth: 2) }
                    try scanner.members { scanner, key throws(ServerError) in
                        let start = scanner.position
                        try scanner.skipValue(depth: 3)
                        guard key == "data" else { return }
                        guard found == nil else { throw .badRequest("the input names \"data\" twice") }
                        found = start..<scanner.position
                    }
                }
            }
            return found
        }

        /// Numbers, or nested lists of them; no more than `expected`.
        mutating func numbers(expected: Int) throws(ServerError) -> [Float] {
            /// What may come next: after `[` anything but `,`; after `,` a value; after a value `,` or `]`.
            enum Next { case valueOrEnd, value, separatorOrEnd }
            var values: [Float] = []
            values.reserveCapacity(expected)
            var depth = 0
            var next = Next.value
            try withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { text throws(ServerError) in
                repeat {
                    skipWhitespace()
                    switch (peek(), next) {
                    case (UInt8(ascii: "["), .value), (UInt8(ascii: "["), .valueOrEnd):
                        depth += 1
                        guard depth <= JSONTensorData.maxDepth else { throw .badRequest("FP32 \"data\" is nested too deeply") }
                        next = .valueOrEnd
                    case (UInt8(ascii: "]"), .valueOrEnd), (UInt8(ascii: "]"), .separatorOrEnd):
                        depth -= 1
                        next = .separatorOrEnd
                    case (UInt8(ascii: ","), .separatorOrEnd):
                        next = .value
                    case (nil, _):
                        throw .badRequest("FP32 \"data\" ends inside a list")
                    case (_, .value), (_, .valueOrEnd):
                        guard values.count < expected else { throw .badRequest("FP32 \"data\" holds more numbers than the shape's \(expected)") }
                        values.append(try number(buffer: text))
                        next = .separatorOrEnd
                        continue
                    default:
                        throw .badRequest("FP32 \"data\" is not a well-formed list of numbers")
                    }
                    position += 1
                } while depth > 0
            }
            skipWhitespace()
            guard position == bytes.count else { throw .badRequest("FP32 \"data\" is not a well-formed list of numbers") }
            guard values.count == expected else { throw .badRequest("FP32 \"data\" holds \(values.count) numbers; the shape needs \(expected)") }
            return values
        }

        /// One JSON number (its grammar checked, so nothing JSON does not allow gets through:
        /// no `inf`, `nan`, hex or leading `+`), rounded once to the nearest float. Short ones
        /// ("0.12345") take Clinger's fast path: an integer below 2^24 and a power of ten up to
        /// 10^10 are exact floats, so one division rounds correctly; the rest go to `strtof`.
        private mutating func number(buffer: UnsafeMutableBufferPointer<CChar>) throws(ServerError) -> Float {
            let start = position
            var mantissa: UInt64 = 0
            var digitCount = 0
            /// Moves past digits, folding the first 19 into `mantissa`; returns how many there were.
            func digits(_ scanner: inout Scanner) -> Int {
                let first = scanner.position
                while scanner.position < scanner.bytes.count {
                    let digit = scanner.bytes[scanner.position] &- UInt8(ascii: "0")
                    guard digit < 10 else { break }
                    if digitCount < 19 { mantissa = mantissa &* 10 &+ UInt64(digit) }
                    digitCount += 1
                    scanner.position += 1
                }
                return scanner.position - first
            }
            let negative = peek() == UInt8(ascii: "-")
            if negative { position += 1 }
            let integer = digits(&self)
            var valid = integer == 1 || (integer > 1 && bytes[position - integer] != UInt8(ascii: "0"))
            var fraction = 0
            if peek() == UInt8(ascii: ".") {
                position += 1
                fraction = digits(&self)
                valid = valid && fraction > 0
            }
            var exponent = 0
            if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
                position += 1
                let signed = peek() == UInt8(ascii: "-") ? -1 : 1
                if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { position += 1 }
                let first = position
                while let byte = peek(), byte &- UInt8(ascii: "0") < 10 {
                    exponent = min(exponent * 10 + Int(byte &- UInt8(ascii: "0")), 100_000)
                    position += 1
                }
                valid = valid && position > first
                exponent *= signed
            }
            guard valid else { throw .badRequest("FP32 \"data\" must hold numbers only") }
            let power = exponent - fraction
            if digitCount <= 19, mantissa < 1 << 24, (-10...10).contains(power) {
                let magnitude = power < 0 ? Float(mantissa) / Self.powerOfTen(-power) : Float(mantissa) * Self.powerOfTen(power)
                return negative ? -magnitude : magnitude
            }
            let length = position - start
            guard length < buffer.count else { throw .badRequest("FP32 \"data\" holds a number of \(length) characters") }
            for offset in 0..<length { buffer[offset] = CChar(bitPattern: bytes[start + offset]) }
            buffer[length] = 0
            return strtof(buffer.baseAddress!, nil)
        }

        /// 10^0 … 10^10, each exactly a float (a switch, not a shared table whose reference
        /// count parallel parsers would fight over in debug builds).
        private static func powerOfTen(_ exponent: Int) -> Float {
            switch exponent {
            case 0: 1
            case 1: 1e1
            case 2: 1e2
            case 3: 1e3
            case 4: 1e4
            case 5: 1e5
            case 6: 1e6
            case 7: 1e7
            case 8: 1e8
            case 9: 1e9
            default: 1e10
            }
        }

        /// Calls `member` with each key of the object here, positioned at its value, which
        /// `member` must consume.
        private mutating func members(_ member: (inout Scanner, String) throws(ServerError) -> Void) throws(ServerError) {
            try sequence(from: UInt8(ascii: "{"), to: UInt8(ascii: "}")) { scanner throws(ServerError) in
                let key = try scanner.string()
                scanner.skipWhitespace()
                try scanner.expect(UInt8(ascii: ":"))
                scanner.skipWhitespace()
                try member(&scanner, key)
            }
        }

        /// Calls `element` positioned at each element of the list here.
        private mutating func elements(_ element: (inout Scanner) throws(ServerError) -> Void) throws(ServerError) {
            try sequence(from: UInt8(ascii: "["), to: UInt8(ascii: "]"), element)
        }

        /// `open`, then items separated by commas (each consumed by `item`), then `close`.
        private mutating func sequence(
            from open: UInt8, to close: UInt8, _ item: (inout Scanner) throws(ServerError) -> Void
        ) throws(ServerError) {
            try expect(open)
            skipWhitespace()
            if peek() == close {
                position += 1
                return
            }
            while true {
                skipWhitespace()
                try item(&self)
                skipWhitespace()
                guard peek() == UInt8(ascii: ",") else { return try expect(close) }
                position += 1
            }
        }

        /// Moves past one value of any kind.
        private mutating func skipValue(depth: Int) throws(ServerError) {
            guard depth <= JSONTensorData.maxDepth else { throw .badRequest("the request's JSON is nested too deeply") }
            switch peek() {
            case UInt8(ascii: "{"): try members { scanner, _ throws(ServerError) in try scanner.skipValue(depth: depth + 1) }
            case UInt8(ascii: "["): try elements { scanner throws(ServerError) in try scanner.skipValue(depth: depth + 1) }
            case UInt8(ascii: "\""): _ = try string(decoding: false)
            case nil: throw .badRequest("the request's JSON ends early")
            default:
                // A number or a literal: JSONSerialization checks it in the header.
                while let byte = peek(), !Self.endsAToken(byte) { position += 1 }
            }
        }

        private static func endsAToken(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "}"), UInt8(ascii: ":"), 0x20, 0x0A, 0x0D, 0x09: true
            default: false
            }
        }

        /// A string here; decoded (escapes and all) only when `decoding`, which keys are.
        private mutating func string(decoding: Bool = true) throws(ServerError) -> String {
            let start = position
            try expect(UInt8(ascii: "\""))
            var escaped = false
            while let byte = peek() {
                position += 1
                if byte == UInt8(ascii: "\\") {
                    escaped = true
                    position += 1
                } else if byte == UInt8(ascii: "\"") {
                    guard decoding else { return "" }
                    let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<position])
                    guard escaped else { return String(decoding: raw.dropFirst().dropLast(), as: UTF8.self) }
                    guard let decoded = try? JSONSerialization.jsonObject(with: Data(raw), options: .fragmentsAllowed) as? String else {
                        throw .badRequest("the request's JSON holds a malformed string")
                    }
                    return decoded
                }
            }
            throw .badRequest("the request's JSON ends inside a string")
        }

        private mutating func expect(_ byte: UInt8) throws(ServerError) {
            guard peek() == byte else { throw .badRequest("the request is not a JSON object") }
            position += 1
        }

        private mutating func skipWhitespace() {
            while let byte = peek(), byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { position += 1 }
        }

        func peek() -> UInt8? {
            position < bytes.count ? bytes[position] : nil
        }
    }
}
