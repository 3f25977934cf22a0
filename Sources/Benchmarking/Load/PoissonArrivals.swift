import Foundation

/// Arrival times of a Poisson process: exponentially distributed gaps with mean 1/rate,
/// from a seeded generator so every run offers the same load.
public struct PoissonArrivals: Sequence, IteratorProtocol, Sendable {
    public let rate: Double
    private var state: UInt64

    public init(rate: Double, seed: UInt64 = 0x5649_5349_4F4E) {
        precondition(rate > 0)
        self.rate = rate
        state = seed
    }

    /// Seconds until the next arrival.
    public mutating func next() -> Double? {
        state &+= 1
        // 53 random bits → a uniform in (0, 1]; −ln(u)/rate is exponential with mean 1/rate.
        let uniform = (Double(splitMix64(state) >> 11) + 1) / 9_007_199_254_740_992
        return -log(uniform) / rate
    }
}
