import Glibc
import Synchronization

/// The `Date` header's value (RFC 9110's IMF-fixdate, e.g. "Sun, 06 Dec 2026 20:10:35 GMT"),
/// formatted at most once a second.
enum HTTPDate {
    private static let cache = Mutex<(second: Int, text: String)>((-1, ""))

    static var now: String {
        var clock = timespec()
        clock_gettime(CLOCK_REALTIME, &clock)
        let second = clock.tv_sec
        if let text = cache.withLock({ $0.second == second ? $0.text : nil }) { return text }
        var time = time_t(second), parts = tm()
        gmtime_r(&time, &parts)
        var buffer = [CChar](repeating: 0, count: 40)
        // strftime's day and month names are the C locale's, which a Swift program keeps.
        let length = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
        let text = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        cache.withLock { $0 = (second, text) }
        return text
    }
}
